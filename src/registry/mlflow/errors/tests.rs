//! Unit tests for error classification.

use super::*;
use crate::registry::mlflow::endpoints as ep;

fn registry_error(status: u16, body: &str, endpoint: &'static Endpoint) -> RegistryError {
    classify_error(endpoint, status, body, "http://mlflow:5000").into_registry()
}

#[test]
fn json_errors_branch_on_the_code_not_the_status() {
    let body = r#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Registered Model (name=a) already exists."}"#;
    let e = classify_error(&ep::CREATE_MODEL, 400, body, "http://x");
    assert!(e.is("RESOURCE_ALREADY_EXISTS"));
    assert!(
        matches!(e.into_registry(), RegistryError::AlreadyExists(m) if m.contains("already exists"))
    );
    let missing = r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=zz not found"}"#;
    assert!(classify_error(&ep::GET_MODEL, 404, missing, "http://x").is_not_found());
    let invalid = r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias zz not found."}"#;
    assert!(matches!(
        registry_error(400, invalid, &ep::SET_ALIAS),
        RegistryError::Invalid(_)
    ));
}

#[test]
fn permission_denied_names_the_operation_and_the_permission() {
    let body = r#"{"error_code": "PERMISSION_DENIED", "message": "Permission denied"}"#;
    let e = registry_error(403, body, &ep::DELETE_ALIAS);
    assert_eq!(
        e.to_string(),
        "permission denied for delete an alias (registered-models/alias): Permission denied (this needs MANAGE permission)"
    );
    let plain = registry_error(403, "Permission denied", &ep::TRANSITION_STAGE);
    assert!(matches!(&plain, RegistryError::PermissionDenied { .. }));
    assert!(
        plain.to_string().contains("needs EDIT permission"),
        "{plain}"
    );
}

#[test]
fn plain_text_401_and_host_header_errors_say_what_to_fix() {
    let e = registry_error(
        401,
        "You are not authenticated. Please see ...",
        &ep::SEARCH_MODELS,
    );
    assert!(matches!(&e, RegistryError::Unauthenticated(_)));
    assert!(
        e.to_string()
            .contains("MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"),
        "{e}"
    );
    let host = registry_error(
        403,
        "Invalid Host header - possible DNS rebinding attack detected",
        &ep::SEARCH_MODELS,
    );
    assert!(matches!(&host, RegistryError::Unreachable(_)));
    assert!(host.to_string().contains("--allowed-hosts"), "{host}");
    let json401 = r#"{"error_code": "UNAUTHENTICATED", "message": "bad token"}"#;
    assert!(matches!(
        registry_error(401, json401, &ep::SEARCH_MODELS),
        RegistryError::Unauthenticated(_)
    ));
}

#[test]
fn plain_text_statuses_map_like_mlflows_client() {
    let html = "<!doctype html><title>404 Not Found</title>";
    assert!(
        classify_error(&ep::SEARCH_LOGGED_MODELS, 404, html, "http://x").is("ENDPOINT_NOT_FOUND")
    );
    assert!(
        classify_error(&ep::SEARCH_LOGGED_MODELS, 405, html, "http://x").is("ENDPOINT_NOT_FOUND")
    );
    assert!(matches!(
        registry_error(502, "Bad Gateway", &ep::SEARCH_MODELS),
        RegistryError::Unreachable(_)
    ));
    let other = registry_error(500, "boom", &ep::CREATE_VERSION);
    assert!(
        matches!(&other, RegistryError::Other(m) if m.contains("INTERNAL_ERROR") && m.contains("boom"))
    );
}

#[test]
fn long_bodies_are_cut() {
    let long = "x".repeat(1000);
    let e = registry_error(500, &long, &ep::SEARCH_MODELS);
    assert!(e.to_string().len() < 400, "{e}");
}
