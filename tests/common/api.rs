//! What tests do through leash and its admin API again and again: read an
//! answer whole, vote on holds as an approver, read the audit chain.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

/// A request's answer, read whole.
pub struct Answered {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Answered {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(Value::Null);
        Self {
            status,
            headers,
            json,
        }
    }

    /// `error.code` of a refusal (Stripe's and leash's generic shape).
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// `X-Leash-Hold-Id`; panics (saying what came instead) when not held.
    pub fn hold_id(&self) -> String {
        self.headers
            .get("x-leash-hold-id")
            .unwrap_or_else(|| panic!("not held: {} {}", self.status, self.json))
            .to_str()
            .unwrap()
            .to_string()
    }
}

/// The admin API of one leash, as approvers and auditors use it.
pub struct AdminApi {
    pub base: String,
    http: reqwest::Client,
    /// The token `holds`, `hold` and `first_pending` read with.
    reader: String,
}

impl AdminApi {
    /// The admin API at `addr`, reading holds with `reader`'s token.
    pub fn at(addr: SocketAddr, reader: &str) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            reader: reader.to_string(),
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// `POST /v1/holds/{id}/{vote}` (`approve` or `reject`) with `body`.
    pub async fn vote_with(
        &self,
        token: &str,
        id: &str,
        vote: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/holds/{id}/{vote}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// A vote with an optional comment.
    pub async fn vote(
        &self,
        token: &str,
        id: &str,
        vote: &str,
        comment: Option<&str>,
    ) -> (u16, Value) {
        let body = comment.map(|comment| json!({ "comment": comment }));
        self.vote_with(token, id, vote, body).await
    }

    pub async fn approve(&self, token: &str, id: &str, body: Option<Value>) -> (u16, Value) {
        self.vote_with(token, id, "approve", body).await
    }

    /// `GET /v1/holds/{id}`'s hold.
    pub async fn hold(&self, id: &str) -> Value {
        let (status, body) = self.get(&self.reader, &format!("/v1/holds/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body["hold"].clone()
    }

    /// `GET /v1/holds?state=…`.
    pub async fn holds(&self, state: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&self.reader, &format!("/v1/holds?state={state}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["holds"].as_array().unwrap().clone()
    }

    /// Waits until a pending hold shows up, and returns its id.
    pub async fn first_pending(&self) -> String {
        for _ in 0..200 {
            if let Some(hold) = self.holds("pending").await.first() {
                return hold["id"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no hold appeared");
    }

    /// Every audit entry (the first 1000), read as the test auditor.
    pub async fn audit(&self) -> Vec<Value> {
        let (status, body) = self.get(super::AUDITOR_TOKEN, "/v1/audit?limit=1000").await;
        assert_eq!(status, 200, "{body}");
        body["entries"].as_array().unwrap().clone()
    }

    /// The first entry of `kind` about hold `id`, waiting for it a little
    /// (the chain is written in the background of some answers).
    pub async fn entry(&self, kind: &str, id: &str) -> Value {
        for _ in 0..100 {
            if let Some(e) = self
                .audit()
                .await
                .into_iter()
                .find(|e| e["kind"] == kind && e["details"]["hold_id"] == id)
            {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {kind} entry for {id}");
    }
}
