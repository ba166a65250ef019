//! One error type for the whole viewer (`AppError: IntoResponse`): an error page, or the JSON
//! `{"error", "kind"}` on `/api/...`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::pages;
use crate::query::QueryError;
use crate::reader::ApiError;
use crate::views::ViewError;

/// What went wrong, and whether to answer with a page or JSON.
#[derive(Debug)]
pub struct AppError {
    pub(super) status: StatusCode,
    kind: &'static str,
    pub(super) message: String,
    json: bool,
}

impl AppError {
    pub(super) fn bad_request(message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_request",
            message: message.into(),
            json: false,
        }
    }

    pub(super) fn not_found(message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: message.into(),
            json: false,
        }
    }

    pub(super) fn unavailable(message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable",
            message: message.into(),
            json: false,
        }
    }

    pub(super) fn into_json(mut self) -> AppError {
        self.json = true;
        self
    }
}

impl From<ViewError> for AppError {
    fn from(error: ViewError) -> AppError {
        match error {
            ViewError::NotFound(message) => AppError::not_found(message),
            ViewError::Invalid(message) => AppError::bad_request(message),
            ViewError::Query(error) => AppError::from(error),
            ViewError::Row(message) => AppError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "internal",
                ..AppError::unavailable(message)
            },
        }
    }
}

impl From<QueryError> for AppError {
    fn from(error: QueryError) -> AppError {
        let message = error.to_string();
        match error {
            QueryError::Sql(_) => AppError {
                kind: "sql",
                ..AppError::bad_request(message)
            },
            QueryError::Timeout(_) => AppError {
                status: StatusCode::REQUEST_TIMEOUT,
                kind: "timeout",
                ..AppError::bad_request(message)
            },
            QueryError::NoDatabase(_) | QueryError::Open(_) | QueryError::Remote { .. } => {
                AppError::unavailable(message)
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.json {
            return (
                self.status,
                Json(ApiError {
                    error: self.message,
                    kind: self.kind.to_string(),
                }),
            )
                .into_response();
        }
        (
            self.status,
            Html(pages::error(self.status, &self.message).into_string()),
        )
            .into_response()
    }
}

pub(super) async fn page_not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!(
        "there is no page at {}; the campaigns are at /",
        uri.path()
    ))
}

pub(super) async fn api_not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(format!(
        "no API route {}; the routes are /api/campaigns, /api/campaigns/ID, /api/trials/ID, /api/variants, /api/sql, /api/tables, /api/events",
        uri.path()
    ))
    .into_json()
}
