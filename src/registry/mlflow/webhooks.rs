//! The daemon's own MLflow webhook (`--register-mlflow-webhook URL`):
//! found by name among the server's webhooks, created when missing, else
//! updated to the URL, events and secret wanted (the secret is never read
//! back, so an existing webhook is always updated: idempotent, and a
//! rotated secret takes effect). Webhooks exist on MLflow 3.3+ with a SQL
//! backend; under basic-auth only admins may manage them.

use std::ops::ControlFlow;

use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::paging::Search;
use super::wire::{WebhookPage, WebhookResponse};
use crate::registry::{RegistryError, Result};

/// What [`MlflowRegistry::ensure_webhook`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookChange {
    Created(String),
    Updated(String),
}

/// What the daemon's webhook should be.
#[derive(Debug, Clone)]
pub struct WebhookSpec<'a> {
    pub name: &'a str,
    pub url: &'a str,
    /// `(entity, action)` in MLflow's enum spelling (`MODEL_VERSION_ALIAS`, `CREATED`).
    pub events: &'a [(&'a str, &'a str)],
    pub secret: &'a str,
}

/// Creates or updates the webhook named `spec.name`.
pub async fn ensure_webhook(reg: &MlflowRegistry, spec: &WebhookSpec<'_>) -> Result<WebhookChange> {
    let events: Vec<_> = spec
        .events
        .iter()
        .map(|(entity, action)| json!({"entity": entity, "action": action}))
        .collect();
    let body = json!({
        "name": spec.name,
        "url": spec.url,
        "events": events,
        "secret": spec.secret,
        "status": "ACTIVE",
        "description": "modelsync watch: reconcile on registry events",
    });
    match find(reg, spec.name).await? {
        Some(id) => {
            reg.client
                .call_at::<WebhookResponse>(&ep::UPDATE_WEBHOOK, Some(&id), Payload::Json(&body))
                .await
                .map_err(|e| e.into_registry())?;
            Ok(WebhookChange::Updated(id))
        }
        None => {
            let created = reg
                .client
                .call::<WebhookResponse>(&ep::CREATE_WEBHOOK, Payload::Json(&body))
                .await;
            match created {
                Ok(r) => Ok(WebhookChange::Created(r.webhook.webhook_id)),
                // Re-read after an ambiguous create: it may have landed.
                Err(e) => match find(reg, spec.name).await? {
                    Some(id) => Ok(WebhookChange::Created(id)),
                    None => Err(e.into_registry()),
                },
            }
        }
    }
}

/// The id of the webhook named `name`, reading every page.
async fn find(reg: &MlflowRegistry, name: &str) -> Result<Option<String>> {
    let mut found = None;
    let q = vec![("max_results", "1000".to_owned())];
    let listed = reg
        .client
        .each_page::<WebhookPage>(&ep::LIST_WEBHOOKS, Search::Query(q), |page| {
            found = page
                .into_iter()
                .find(|w| w.name == name)
                .map(|w| w.webhook_id);
            if found.is_some() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await;
    match listed {
        Ok(()) => Ok(found),
        Err(e) if e.is("ENDPOINT_NOT_FOUND") => Err(RegistryError::Invalid(format!(
            "{} has no webhooks API (MLflow before 3.3): --register-mlflow-webhook needs MLflow 3.3+ with a SQL backend",
            reg.client.display()
        ))),
        Err(e) => Err(e.into_registry()),
    }
}
