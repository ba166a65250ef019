//! Who may use the viewer and the read API, checked before any route runs: what a page on another
//! site could make a browser send is refused.
//!
//! - `Host` must be an IP address (a browser sends one only when the user typed it: DNS
//!   rebinding needs a name), `localhost`, or a name the user allowed (`--allow-host`); else 403.
//! - A request that changes nothing still must not come from another site: a `POST` whose
//!   `Origin` is not this server's, or that a browser marks `Sec-Fetch-Site: cross-site`, is
//!   refused (403); `POST /api/sql` takes only `Content-Type: application/json` (415), which a
//!   cross-site form or `text/plain` fetch cannot send without a CORS preflight we never grant.
//! - With a token (required off loopback), every request carries it: `Authorization: Bearer
//!   TOKEN`, or the cookie a browser gets by opening any page once with `?token=TOKEN` (then
//!   redirected to the same page without it); else 401.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The cookie that carries the token in a browser (HttpOnly, SameSite=Strict).
pub const TOKEN_COOKIE: &str = "eval_viewer_token";
/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The host names (besides IP addresses and `localhost`) a request may name, and the token every
/// request must carry, if any.
#[derive(Debug, Clone, Default)]
pub struct Access {
    allowed_hosts: Vec<String>,
    token: Option<String>,
}

impl Access {
    /// Only IP addresses and `localhost`, no token: a loopback server's default.
    pub fn local() -> Access {
        Access::default()
    }

    /// Also allows `Host: name` (any port), case-insensitively.
    pub fn allow_host(mut self, name: &str) -> Access {
        self.allowed_hosts
            .push(name.trim_end_matches('.').to_ascii_lowercase());
        self
    }

    /// Requires `token` on every request; refused when shorter than [`MIN_TOKEN_LEN`].
    pub fn with_token(mut self, token: &str) -> Result<Access, String> {
        if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "the token must be at least {MIN_TOKEN_LEN} characters, without spaces"
            ));
        }
        self.token = Some(token.to_string());
        Ok(self)
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether `host` (a `Host` header: `name`, `name:port`, `[v6]:port`) is one this server
    /// answers to.
    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((v6, port)) if port.is_empty() || port.starts_with(':') => v6,
                _ => return false,
            },
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || self.allowed_hosts.contains(&name)
    }

    /// The token this request carries: the bearer header, or the cookie.
    fn presented(headers: &HeaderMap) -> Option<&str> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        bearer.or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == TOKEN_COOKIE)
                .map(|(_, value)| value)
        })
    }
}

/// Equal in time that does not depend on where the texts differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

fn refuse(status: StatusCode, message: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// `?token=` taken off a URI: the URI without it, and the token.
fn token_in_query(uri: &Uri) -> Option<(String, String)> {
    let query = uri.query()?;
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("token=") {
            Some(value) => {
                token = Some(value.to_string());
                false
            }
            None => true,
        })
        .collect();
    let token = token?;
    let location = if rest.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    };
    Some((location, token))
}

/// The middleware: Host, then the token, then what a POST may be.
pub(super) async fn check(State(access): State<Access>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "refused: the request has no Host header".to_string(),
        );
    };
    if !access.host_allowed(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "refused: Host {host:?} is not a name this viewer answers to (IP addresses and localhost are; start it with --allow-host NAME to allow another)"
            ),
        );
    }
    let host = host.to_string();
    if let Some(token) = &access.token {
        if let Some((location, given)) = token_in_query(request.uri()) {
            if request.method() != Method::GET || !same_secret(&given, token) {
                return refuse(StatusCode::UNAUTHORIZED, "refused: wrong token".to_string());
            }
            let cookie = format!("{TOKEN_COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict");
            let mut response =
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return response;
        }
        if !Access::presented(headers).is_some_and(|given| same_secret(given, token)) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "refused: this viewer needs its token: open any page once with ?token=TOKEN, or send Authorization: Bearer TOKEN".to_string(),
            );
        }
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if let Some(origin) = origin
            && origin != format!("http://{host}")
        {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "refused: a {} from origin {origin:?}, not this viewer's",
                    request.method()
                ),
            );
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|site| site == "cross-site")
        {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("refused: a cross-site {}", request.method()),
            );
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if request.uri().path() == "/api/sql" && !json {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "refused: POST /api/sql takes only Content-Type: application/json".to_string(),
            );
        }
    }
    next.run(request).await
}
