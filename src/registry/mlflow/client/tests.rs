//! Unit tests for the client set-up.

use super::*;

#[test]
fn credentials_in_the_url_are_used_and_hidden() {
    let c = Client::new(
        "http://bob:s%40cret@mlflow.example:5000/prefix/",
        MlflowConfig::default(),
    )
    .expect("valid");
    assert_eq!(c.display(), "http://mlflow.example:5000/prefix");
    assert_eq!(
        c.api.as_str(),
        "http://mlflow.example:5000/prefix/api/2.0/mlflow/"
    );
    assert!(
        matches!(&c.auth, Some(Auth::Basic { username, password }) if username == "bob" && password.expose() == "s@cret")
    );
    assert!(Client::new("ftp://x", MlflowConfig::default()).is_err());
}

#[test]
fn a_request_carrying_a_secret_is_refused_except_the_webhook_secret_field() {
    crate::secret::register("TEST_CLIENT_TOKEN", "tok-client-0000-secret");
    let body = serde_json::json!({"name": "m", "description": "x tok-client-0000-secret"});
    let err = refuse_leaks(
        &super::super::endpoints::CREATE_MODEL,
        None,
        &Payload::Json(&body),
    )
    .expect_err("refused");
    assert!(
        matches!(&err, RegistryError::Leak { leak, .. } if leak.name == "TEST_CLIENT_TOKEN"),
        "{err}"
    );
    assert!(!err.to_string().contains("tok-client"), "{err}");
    let query = [("filter", "name='tok-client-0000-secret'".to_string())];
    assert!(
        refuse_leaks(
            &super::super::endpoints::SEARCH_MODELS,
            None,
            &Payload::Query(&query)
        )
        .is_err()
    );
    assert!(
        refuse_leaks(
            &super::super::endpoints::GET_LOGGED_MODEL,
            Some("tok-client-0000-secret"),
            &Payload::Query(&[])
        )
        .is_err()
    );
    let hook = serde_json::json!({"name": "h", "secret": "tok-client-0000-secret"});
    assert!(
        refuse_leaks(
            &super::super::endpoints::CREATE_WEBHOOK,
            None,
            &Payload::Json(&hook)
        )
        .is_ok(),
        "the webhook's own secret field"
    );
    let elsewhere =
        serde_json::json!({"name": "h", "secret": "s", "description": "tok-client-0000-secret"});
    assert!(
        refuse_leaks(
            &super::super::endpoints::UPDATE_WEBHOOK,
            None,
            &Payload::Json(&elsewhere)
        )
        .is_err()
    );
}
