//! The pages and their JSON under `/api/...`: campaigns, a campaign, a trial, the variants. Each
//! page and its JSON come from one data function (a view, or `data.rs` for pages that combine
//! several), cached by `Source::cached`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};

use super::data::{self, CampaignPage, VariantsPage};
use super::error::AppError;
use super::pages;
use super::source::Source;
use crate::show::TrialShown;
use crate::views::CampaignList;

pub(super) type PageResult = Result<Response, AppError>;
pub(super) type Params = Query<HashMap<String, String>>;

pub(super) fn html(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// A whole-number parameter within `range`, or the default.
pub(super) fn number_param(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, AppError> {
    match params.get(name).map(|text| text.trim()) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|value| range.contains(value))
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "{name} must be a whole number from {} to {}, not {text:?}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

// campaigns

struct ListRequest {
    filter: Option<String>,
    limit: usize,
    offset: usize,
}

fn list_request(params: &HashMap<String, String>) -> Result<ListRequest, AppError> {
    Ok(ListRequest {
        filter: params
            .get("q")
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty()),
        limit: number_param(params, "limit", 200, 1..=1_000)?,
        offset: number_param(params, "offset", 0, 0..=usize::MAX)?,
    })
}

async fn campaigns_json(
    source: &Source,
    request: ListRequest,
) -> Result<Arc<CampaignList>, AppError> {
    let key = format!(
        "campaigns {:?} {} {}",
        request.filter, request.limit, request.offset
    );
    source
        .cached(key, move |reader| {
            crate::views::list(
                reader,
                request.filter.as_deref(),
                request.limit,
                request.offset,
            )
            .map(|view| view.data)
        })
        .await
}

pub(super) async fn campaigns_page(
    State(source): State<Source>,
    Query(params): Params,
) -> PageResult {
    let request = list_request(&params)?;
    let data = campaigns_json(&source, request).await?;
    Ok(html(pages::campaigns(&data)))
}

pub(super) async fn campaigns_api(
    State(source): State<Source>,
    Query(params): Params,
) -> PageResult {
    let request = list_request(&params).map_err(AppError::into_json)?;
    let data = campaigns_json(&source, request)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

async fn campaign_json(source: &Source, id: String) -> Result<Arc<CampaignPage>, AppError> {
    source
        .cached(format!("campaign {id}"), move |reader| {
            data::campaign(reader, &id)
        })
        .await
}

pub(super) async fn campaign_page(
    State(source): State<Source>,
    Path(id): Path<String>,
) -> PageResult {
    let data = campaign_json(&source, id).await?;
    Ok(html(pages::campaign(&data)))
}

pub(super) async fn campaign_api(
    State(source): State<Source>,
    Path(id): Path<String>,
) -> PageResult {
    let data = campaign_json(&source, id)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

// trials

async fn trial_json(source: &Source, id: String) -> Result<Arc<TrialShown>, AppError> {
    source
        .cached(format!("trial {id}"), move |reader| {
            crate::show::show_trial(reader, &id).map(|view| view.data)
        })
        .await
}

pub(super) async fn trial_page(State(source): State<Source>, Path(id): Path<String>) -> PageResult {
    let data = trial_json(&source, id).await?;
    Ok(html(pages::trial(&data)))
}

pub(super) async fn trial_api(State(source): State<Source>, Path(id): Path<String>) -> PageResult {
    let data = trial_json(&source, id).await.map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}

// variants

/// The subject and chaos type asked for: both or neither.
fn variants_request(
    params: &HashMap<String, String>,
) -> Result<Option<(String, String)>, AppError> {
    let get = |name: &str| {
        params
            .get(name)
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    };
    match (get("subject"), get("chaos")) {
        (Some(subject), Some(chaos)) => Ok(Some((subject, chaos))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(AppError::bad_request(
            "give the chaos type too: /variants?subject=etcd&chaos=node_kill",
        )),
        (None, Some(_)) => Err(AppError::bad_request(
            "give the subject too: /variants?subject=etcd&chaos=node_kill",
        )),
    }
}

async fn variants_json(
    source: &Source,
    choice: Option<(String, String)>,
) -> Result<Arc<VariantsPage>, AppError> {
    source
        .cached(format!("variants {choice:?}"), move |reader| {
            data::variants(reader, choice.as_ref())
        })
        .await
}

pub(super) async fn variants_page(
    State(source): State<Source>,
    Query(params): Params,
) -> PageResult {
    let choice = variants_request(&params)?;
    let data = variants_json(&source, choice).await?;
    Ok(html(pages::variants(&data)))
}

pub(super) async fn variants_api(
    State(source): State<Source>,
    Query(params): Params,
) -> PageResult {
    let choice = variants_request(&params).map_err(AppError::into_json)?;
    let data = variants_json(&source, choice)
        .await
        .map_err(AppError::into_json)?;
    Ok(Json(&*data).into_response())
}
