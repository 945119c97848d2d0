//! The live page `/`: one row per delivery, updated as its `mail-activity` events arrive
//! through socket.io `/live`, with a status filter and a link to every template preview.
//! Its socket.io client (`/live.js`) and its style (`/live.css`) are this project's own,
//! served from here (no CDN, works offline), and its CSP lets it load nothing else.

use super::AppState;
use crate::templates::Templates;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

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

/// The page with a preview link for each template × locale of `templates`, the set in force
/// when the page is asked for, so a template added by a reload gets its links at once.
fn page(templates: &Templates) -> String {
    PAGE_SOURCE.replacen(PREVIEWS_PLACEHOLDER, &preview_links(templates), 1)
}

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(show_live_page))
        .route("/live.js", get(live_script))
        .route("/live.css", get(live_style))
}

/// One `<li>` per template × locale, linking `/templates/{name}/{locale}`. Template names
/// (`[a-z0-9_-]`) and locale tags (`[A-Za-z0-9-]`) need no HTML escaping.
fn preview_links(templates: &Templates) -> String {
    let mut links = String::new();
    for entry in &templates.catalog().templates {
        for locale in &entry.locales {
            let (name, locale) = (entry.name.as_str(), locale.as_str());
            links.push_str(&format!(
                "    <li><a href=\"/templates/{name}/{locale}\">{name} ({locale})</a></li>\n"
            ));
        }
    }
    links
}

async fn show_live_page(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page(&state.templates.current()),
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
        let page = page(&Templates::new());
        assert!(!page.contains(PREVIEWS_PLACEHOLDER));
        for template in domain::Template::BUILT_IN {
            for locale in domain::Locale::BUILT_IN {
                let href = format!(
                    "href=\"/templates/{}/{}\"",
                    template.as_str(),
                    locale.as_str()
                );
                assert_eq!(page.matches(&href).count(), 1, "{href}");
            }
        }
    }
}
