//! The web viewer: one axum app with the pages (rendered on the server by `maud`, which escapes
//! every value it inserts), their JSON under `/api/...`, the read-only SQL, server-sent progress
//! events and the embedded assets. Every page is built from the same data as its JSON, and those
//! are the CLI's views (`views`, `show`), typed structs, so the web and the terminal show one set
//! of figures and a page can only name fields that exist. Every request passes `access` first
//! (Host, token, what a POST may be).

mod access;
mod assets;
mod cache;
mod charts;
mod data;
mod error;
mod held;
mod pages;
mod routes;
mod source;
mod sql;
mod sse;

pub use access::{Access, MIN_TOKEN_LEN, TOKEN_COOKIE};
pub use pages::encode;
pub use source::Source;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;

/// The policy sent with every response: only this origin's scripts, styles and images (SVG
/// charts are inline markup, not scripts), no inline scripts, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The whole viewer: pages, `/api/...`, assets, behind `access`.
pub fn app(source: Source, access: Access) -> Router {
    Router::new()
        .route("/", get(routes::campaigns_page))
        .route("/campaigns/{id}", get(routes::campaign_page))
        .route("/trials/{id}", get(routes::trial_page))
        .route("/variants", get(routes::variants_page))
        .route("/sql", get(sql::sql_page))
        .route("/sql.csv", get(sql::sql_csv))
        .route("/api/campaigns", get(routes::campaigns_api))
        .route("/api/campaigns/{id}", get(routes::campaign_api))
        .route("/api/trials/{id}", get(routes::trial_api))
        .route("/api/variants", get(routes::variants_api))
        .route("/api/sql", get(sql::sql_api_get).post(sql::sql_api_post))
        .route("/api/tables", get(sql::tables_api))
        .route("/api/events", get(sse::progress_events))
        .route("/assets/style.css", get(assets::style))
        .route("/assets/app.js", get(assets::script))
        .route(
            "/api/{*rest}",
            get(error::api_not_found).post(error::api_not_found),
        )
        .fallback(error::page_not_found)
        .layer(axum::middleware::from_fn_with_state(access, access::check))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(source)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
