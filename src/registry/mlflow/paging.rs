//! Following a search's pages one after another: [`Client::each_page`],
//! the one loop over `page_token`s (a search whose tokens are MLflow's
//! offsets is read four pages at a time instead: `read.rs`).

use std::collections::HashSet;
use std::ops::ControlFlow;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::{Client, Payload};
use super::endpoints::Endpoint;
use super::errors::CallError;
use super::wire::{
    ArtifactPage, ExperimentPage, LoggedModelPage, ModelVersionPage, RegisteredModelPage,
    WebhookPage,
};

/// One page of a search: its items and the next page's token (empty on
/// the last page). The items are a `Vec` of wire objects, or what they
/// were folded into as they were decoded (`pages::FoldedVersions`).
pub trait Page: DeserializeOwned + Send + 'static {
    type Items;
    fn into_parts(self) -> (Self::Items, String);
}

/// A search's request, without a page token: query parameters, or a JSON
/// body.
pub enum Search {
    Query(Vec<(&'static str, String)>),
    Json(Value),
}

impl Client {
    /// Calls `ep` for every page of `search`, one after another, handing
    /// each page's items to `take`, until the last page (no token, or a
    /// token seen before) or until `take` breaks.
    pub async fn each_page<P: Page>(
        &self,
        ep: &'static Endpoint,
        search: Search,
        mut take: impl FnMut(P::Items) -> ControlFlow<()>,
    ) -> Result<(), CallError> {
        let mut token = String::new();
        let mut seen = HashSet::new();
        loop {
            let page: P = match &search {
                Search::Query(q) => {
                    let mut q = q.clone();
                    if !token.is_empty() {
                        q.push(("page_token", token.clone()));
                    }
                    self.call(ep, Payload::Query(&q)).await?
                }
                Search::Json(body) => {
                    let mut body = body.clone();
                    if !token.is_empty() {
                        body["page_token"] = json!(token);
                    }
                    self.call(ep, Payload::Json(&body)).await?
                }
            };
            let (items, next) = page.into_parts();
            if take(items).is_break() || next.is_empty() || !seen.insert(next.clone()) {
                return Ok(());
            }
            token = next;
        }
    }
}

macro_rules! page {
    ($page:ty, $items:ident, $item:ty) => {
        impl Page for $page {
            type Items = Vec<$item>;
            fn into_parts(self) -> (Vec<$item>, String) {
                (self.$items, self.next_page_token)
            }
        }
    };
}

page!(
    RegisteredModelPage,
    registered_models,
    super::wire::RegisteredModel
);
page!(ModelVersionPage, model_versions, super::wire::ModelVersion);
page!(ExperimentPage, experiments, super::wire::Experiment);
page!(LoggedModelPage, models, super::wire::LoggedModel);
page!(ArtifactPage, files, super::wire::FileInfo);
page!(WebhookPage, webhooks, super::wire::Webhook);
