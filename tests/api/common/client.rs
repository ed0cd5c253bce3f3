//! A typed view of GraphQL responses.

use serde_json::Value;

/// A signed-in agent: its bearer token and global ID.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub agent_id: String,
}

#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    pub async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (HTTP {status}): {text}"));
        Self { status, body }
    }

    /// `data`, after asserting there were no errors.
    pub fn data(&self) -> Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.body);
        self.body["data"].clone()
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// `extensions.code` of the first top-level error.
    pub fn error_code(&self) -> String {
        let errors = self.errors();
        let first = errors.first().unwrap_or_else(|| panic!("expected an error, got {}", self.body));
        first["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without code: {first}"))
            .to_owned()
    }

    /// The codes of `userErrors` of the payload at `data.<field>`.
    pub fn user_error_codes(&self, field: &str) -> Vec<String> {
        self.data()[field]["userErrors"]
            .as_array()
            .unwrap_or_else(|| panic!("no userErrors in {}", self.body))
            .iter()
            .map(|e| e["code"].as_str().expect("code").to_owned())
            .collect()
    }
}
