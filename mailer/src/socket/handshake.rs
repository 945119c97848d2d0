//! What the HTTP side checks before socket.io sees a request to `/socket.io/`:
//!
//! - **Origin.** A request with an `Origin` header comes from a browser, which attaches
//!   the mailer's cookies and credentials whatever page opened it. It is refused with 403
//!   unless the origin is the mailer's own (`http://` or `https://` followed by the
//!   request's `Host`, when that host is an IP address or `localhost`) or listed in
//!   `mailer.allowed_origins`. Services send no `Origin`.
//! - **Sessions.** At most `mailer.max_sockets` engine.io sessions are held at once; a
//!   handshake past that gets 503. A handshake is a request without `sid`; it is given a
//!   [`SessionTicket`] in its extensions, which the engine keeps with the session's
//!   request parts for as long as the session lives, so the count falls when the session
//!   is gone (closed, timed out, or refused before it opened). A session refused at its
//!   namespace gives its place back at once ([`SessionTicket::release`]), though the engine
//!   holds it until its connect timeout: the place is what service clients need free.
//!
//! Which client a session belongs to is not known here: a service client's token and a
//! browser's `/live` come in the CONNECT packet, after the handshake. So anonymous viewers
//! get a pool of their own at `/live`'s connect (`mailer.max_live_sockets`, see
//! [`super::live`]), which leaves `max_sockets - max_live_sockets` places that only service
//! clients (and token holders) can keep; a session that joins no namespace holds its place
//! for [`super::CONNECT_TIMEOUT`] at most.

use crate::error::error_body;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use domain::config::MailerConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The path socketioxide serves.
const ENGINE_PATH: &str = "/socket.io";

/// The checks and the session count; shared by every request.
struct Guard {
    max_sessions: usize,
    /// Lowercase, without a trailing slash.
    allowed_origins: Vec<String>,
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

/// One engine.io session's place in the count; the last clone dropped gives it back.
#[derive(Clone)]
pub struct SessionTicket(Arc<Seat>);

/// A place among `mailer.max_sockets`, given back when dropped or released.
pub struct Seat {
    /// True while the place is counted.
    held: AtomicBool,
    max_sessions: usize,
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl SessionTicket {
    /// Gives the session's place back before the session ends: a session refused at its
    /// namespace, which the engine closes at its connect timeout.
    pub fn release(&self) {
        if self.0.held.swap(false, Ordering::AcqRel) {
            self.0.open.fetch_sub(1, Ordering::AcqRel);
            self.0.metrics.socketio_sessions.dec();
        }
    }

    /// True when the session holds a place: it kept its own, or, having given it back,
    /// found a free one again (a refused session that asks to connect once more).
    pub fn hold(&self) -> bool {
        if self.0.held.load(Ordering::Acquire) {
            return true;
        }
        if !take_place(&self.0.open, self.0.max_sessions) {
            return false;
        }
        if self.0.held.swap(true, Ordering::AcqRel) {
            // Held meanwhile by another connect of the same session: one place is enough.
            self.0.open.fetch_sub(1, Ordering::AcqRel);
        } else {
            self.0.metrics.socketio_sessions.inc();
        }
        true
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.held.swap(false, Ordering::AcqRel) {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.metrics.socketio_sessions.dec();
        }
    }
}

/// Counts one more in `open` unless it holds `max` already.
fn take_place(open: &AtomicUsize, max: usize) -> bool {
    open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < max).then_some(n + 1)
    })
    .is_ok()
}

/// Wraps `router` (which carries the socket.io layer) with the origin and session checks.
pub fn protect(router: Router, config: &MailerConfig, metrics: Arc<Metrics>) -> Router {
    let guard = Arc::new(Guard {
        max_sessions: config.max_sockets,
        allowed_origins: config
            .allowed_origins
            .iter()
            .map(|o| normalise_origin(o))
            .collect(),
        open: Arc::new(AtomicUsize::new(0)),
        metrics,
    });
    router.layer(middleware::from_fn_with_state(guard, check))
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// True when `host` (a `Host` header) is an IP address or `localhost`, with or without a port.
///
/// Only such a host makes "the origin is the request's own host" mean the mailer's own page.
/// A page on a DNS name that an attacker points at the mailer's address (DNS rebinding) sends
/// that name as both `Origin` and `Host`, so a mailer reached by a name must list it in
/// `mailer.allowed_origins`.
fn names_no_dns_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name == "localhost" || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn is_engine_path(path: &str) -> bool {
    path.strip_prefix(ENGINE_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A request that opens a session: it names none.
fn is_handshake(query: Option<&str>) -> bool {
    !query
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.split('=').next() == Some("sid"))
}

impl Guard {
    fn origin_allowed(&self, origin: &HeaderValue, host: Option<&str>) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = normalise_origin(origin);
        if let Some(host) = host {
            let host = host.to_ascii_lowercase();
            let own = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if own == Some(host.as_str()) && names_no_dns_host(&host) {
                return true;
            }
        }
        self.allowed_origins.contains(&origin)
    }

    fn take_seat(&self) -> Option<SessionTicket> {
        take_place(&self.open, self.max_sessions).then(|| {
            self.metrics.socketio_sessions.inc();
            SessionTicket(Arc::new(Seat {
                held: AtomicBool::new(true),
                max_sessions: self.max_sessions,
                open: self.open.clone(),
                metrics: self.metrics.clone(),
            }))
        })
    }

    fn refuse(&self, reason: &'static str) {
        self.metrics
            .socketio_refused
            .get_or_create(&crate::metrics::ReasonLabel { reason })
            .inc();
    }
}

async fn check(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    if !is_engine_path(request.uri().path()) {
        return next.run(request).await;
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        if !guard.origin_allowed(origin, host) {
            guard.refuse("origin");
            return error_body(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "This origin may not open a socket.io session: only the mailer's own page and mailer.allowed_origins may.",
            );
        }
    }
    if is_handshake(request.uri().query()) {
        let Some(ticket) = guard.take_seat() else {
            guard.refuse("sessions");
            let mut response = error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "The mailer holds as many socket.io sessions as mailer.max_sockets allows; try again later.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response.into_response();
        };
        request.extensions_mut().insert(ticket);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allowed: &[&str]) -> Guard {
        Guard {
            max_sessions: 2,
            allowed_origins: allowed.iter().map(|o| normalise_origin(o)).collect(),
            open: Arc::new(AtomicUsize::new(0)),
            metrics: Arc::new(Metrics::new()),
        }
    }

    #[test]
    fn only_the_own_origin_and_listed_ones_pass() {
        let g = guard(&["https://ops.example.com"]);
        let allowed = |origin: &str, host: &str| {
            g.origin_allowed(&HeaderValue::from_str(origin).unwrap(), Some(host))
        };
        assert!(allowed("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(allowed("http://localhost:8080", "localhost:8080"));
        assert!(allowed("http://[::1]:8080", "[::1]:8080"));
        // A name is the mailer's only when listed: the same name in Origin and Host is what
        // a DNS-rebinding page sends.
        assert!(!allowed("https://mail.example.com", "mail.example.com"));
        assert!(!allowed(
            "http://rebound.evil.example:8080",
            "rebound.evil.example:8080"
        ));
        assert!(allowed("https://ops.example.com", "127.0.0.1:8080"));
        assert!(!allowed("http://evil.example", "127.0.0.1:8080"));
        assert!(!allowed("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!allowed("null", "127.0.0.1:8080"));
        assert!(!allowed("http://ops.example.com", "127.0.0.1:8080"));
    }

    #[test]
    fn seats_come_back_when_the_last_ticket_is_dropped() {
        let g = guard(&[]);
        let a = g.take_seat().expect("first");
        let b = g.take_seat().expect("second");
        assert!(g.take_seat().is_none());
        let a2 = a.clone();
        drop(a);
        assert!(g.take_seat().is_none(), "a clone still holds the seat");
        drop(a2);
        let _c = g.take_seat().expect("a seat again");
        drop(b);
    }

    #[test]
    fn a_released_seat_is_free_at_once_and_held_again_only_if_one_is_free() {
        let g = guard(&[]);
        let a = g.take_seat().expect("first");
        let b = g.take_seat().expect("second");
        a.release();
        a.release();
        let c = g.take_seat().expect("the released place");
        assert!(!a.hold(), "every place is taken");
        drop(b);
        assert!(a.hold(), "a place came free");
        assert!(a.hold(), "held once");
        assert!(g.take_seat().is_none());
        drop(a);
        drop(c);
        assert_eq!(g.open.load(Ordering::Acquire), 0);
    }

    #[test]
    fn handshakes_are_requests_without_a_session_id() {
        assert!(is_handshake(Some("EIO=4&transport=polling")));
        assert!(is_handshake(None));
        assert!(!is_handshake(Some("EIO=4&transport=websocket&sid=abc")));
        assert!(is_engine_path("/socket.io/"));
        assert!(!is_engine_path("/socket.iox"));
    }
}
