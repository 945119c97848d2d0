//! The live page `/`: one row per delivery, updated as its `mail-activity` events arrive
//! through socket.io `/live`, with a status filter and a link to every template preview.
//! Its socket.io client (`/live.js`) and its style (`/live.css`) are this project's own,
//! served from here (no CDN, works offline), and its CSP lets it load nothing else.

use super::AppState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use domain::{Locale, Template};
use std::sync::LazyLock;

const PAGE_SOURCE: &str = include_str!("../../static/live.html");
const SCRIPT: &str = include_str!("../../static/live.js");
const STYLE: &str = include_str!("../../static/live.css");

/// Where live.html takes the preview links.
const PREVIEWS_PLACEHOLDER: &str = "<!-- template previews -->";

/// The page's own files and its websocket are all it may reach: an injected script or
/// style, or a request to another host, is refused by the browser. `connect-src 'self'`
/// covers `ws://` and `wss://` to the same host and port.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page with its preview links, built once at first use from `Template::ALL` ×
/// `Locale::ALL`, so a template added to the domain gets its links without touching the page.
static PAGE: LazyLock<String> =
    LazyLock::new(|| PAGE_SOURCE.replacen(PREVIEWS_PLACEHOLDER, &preview_links(), 1));

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(show_live_page))
        .route("/live.js", get(live_script))
        .route("/live.css", get(live_style))
}

/// One `<li>` per template × locale, linking `/templates/{name}/{locale}`. The names are
/// the domain's fixed identifiers (`[a-z_]`), so they need no HTML escaping.
fn preview_links() -> String {
    let mut links = String::new();
    for template in Template::ALL {
        for locale in Locale::ALL {
            let (name, locale) = (template.as_str(), locale.as_str());
            links.push_str(&format!(
                "    <li><a href=\"/templates/{name}/{locale}\">{name} ({locale})</a></li>\n"
            ));
        }
    }
    links
}

async fn show_live_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE.as_str(),
    )
}

async fn live_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
}

async fn live_style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_every_template_in_every_locale_once() {
        assert!(!PAGE.contains(PREVIEWS_PLACEHOLDER));
        for template in Template::ALL {
            for locale in Locale::ALL {
                let href = format!(
                    "href=\"/templates/{}/{}\"",
                    template.as_str(),
                    locale.as_str()
                );
                assert_eq!(PAGE.matches(&href).count(), 1, "{href}");
            }
        }
    }
}
