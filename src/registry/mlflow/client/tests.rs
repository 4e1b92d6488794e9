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
