//! Blocking HTTP to loopback services through `ureq`: the owner's read API, and in the benchmark
//! and the browser test the viewer and ChromeDriver. Every caller is synchronous (a view on a
//! blocking thread, a benchmark loop, a test), so a blocking client fits; ureq decodes chunked
//! bodies whole, so text split across chunks (a multibyte character among them) arrives intact.
//! No TLS, no proxy from the environment: the services are on this host.

use std::time::Duration;

/// A response: its status and its whole body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method url` with an optional JSON body and reads the whole answer, whatever its status,
/// within `patience`. Only `http://` URLs.
pub fn request(
    method: &str,
    url: &str,
    json_body: Option<&[u8]>,
    patience: Duration,
) -> Result<Response, String> {
    request_with_token(method, url, json_body, patience, None)
}

/// [`request`] with `Authorization: Bearer TOKEN` when a token is given.
pub fn request_with_token(
    method: &str,
    url: &str,
    json_body: Option<&[u8]>,
    patience: Duration,
    token: Option<&str>,
) -> Result<Response, String> {
    if !url.starts_with("http://") {
        return Err(format!("only http:// addresses are supported, not {url:?}"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(patience))
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    let request = match json_body {
        Some(body) => builder
            .header("Content-Type", "application/json")
            .body(body.to_vec()),
        None => builder.body(Vec::new()),
    }
    .map_err(|error| error.to_string())?;
    let mut response = agent.run(request).map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    // A query's answer or a large page may be far above ureq's default limit of 10 MB.
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|error| error.to_string())?;
    Ok(Response { status, body })
}
