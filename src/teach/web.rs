//! The live web view (`ebsim web`): one self-contained page (inline CSS
//! and JavaScript, no external asset, so it works offline) that draws the
//! instances, the volumes, the modifications with their progress and each
//! disk's layers to scale. The page listens to `/api/events`, a stream of
//! server-sent events: the server reads the state every 250 ms and sends
//! it whenever it differs from what it sent last (a growpart changes the
//! layers without changing the state document, so the whole view is
//! compared, not the document's time). `/api/status` answers the same
//! JSON once. Served by the EC2 endpoint's HTTP plumbing
//! ([`crate::api::server`]), which ends the streams when it stops.

use super::layers;
use crate::api::http::Request;
use crate::api::server::{Answer, Factory, Handler};
use crate::ec2::model::ModState;
use serde_json::{Value, json};

/// The page.
pub const PAGE: &str = include_str!("web.html");

/// The view: answers `/` with the page and `/api/status` with the state.
pub struct WebView {
    factory: Box<Factory>,
    region: String,
}

impl WebView {
    /// A view of the cloud `factory` makes for `region`.
    pub fn new(factory: Box<Factory>, region: &str) -> WebView {
        WebView {
            factory,
            region: region.to_string(),
        }
    }

    /// What the page shows, as JSON.
    pub fn status(&self) -> Result<Value, String> {
        let ec2 = (self.factory)(&self.region).map_err(|e| e.to_string())?;
        let (state, now) = ec2
            .transact(|txn| Ok((txn.state().clone(), txn.now())))
            .map_err(|e| e.to_string())?;
        let mut instances = Vec::new();
        for i in state.instances.values() {
            let running = i.state.as_str() == "running";
            let l = if running {
                layers::of_instance(&ec2, Some(&i.id)).ok()
            } else {
                None
            };
            instances.push(json!({
                "id": i.id,
                "type": i.instance_type,
                "state": i.state.as_str(),
                "image": i.image_id,
                "layers": l,
            }));
        }
        let volumes: Vec<Value> = state
            .volumes
            .values()
            .map(|v| {
                json!({
                    "id": v.id,
                    "size_gib": v.size,
                    "type": v.volume_type.as_str(),
                    "state": v.state.as_str(),
                    "attachments": v.attachments.iter().map(|a| json!({
                        "instance": a.instance_id,
                        "device": a.device,
                        "delete_on_termination": a.delete_on_termination,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let modifications: Vec<Value> = state
            .modifications
            .iter()
            .filter(|m| !matches!(m.state, ModState::Completed) || m.end_time.is_some())
            .map(|m| {
                json!({
                    "volume": m.volume_id,
                    "state": m.state.as_str(),
                    "progress": m.progress(now),
                    "original_gib": m.original_size,
                    "target_gib": m.target_size,
                })
            })
            .collect();
        let snapshots: Vec<Value> = state
            .snapshots
            .values()
            .filter(|s| s.owner_alias.is_none())
            .map(|s| json!({"id": s.id, "volume": s.volume_id, "state": s.state.as_str()}))
            .collect();
        Ok(json!({
            "instances": instances,
            "volumes": volumes,
            "modifications": modifications,
            "snapshots": snapshots,
        }))
    }
}

impl Handler for WebView {
    fn is_stream(&self, req: &Request) -> bool {
        req.method == "GET" && req.path == "/api/events"
    }

    fn event(&self, last: Option<&str>) -> Option<String> {
        let now = match self.status() {
            Ok(v) => v.to_string(),
            Err(e) => json!({ "error": e }).to_string(),
        };
        (last != Some(now.as_str())).then_some(now)
    }

    fn answer(&self, req: &Request) -> Answer {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") | ("GET", "/index.html") => Answer {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: PAGE.as_bytes().to_vec(),
            },
            ("GET", "/api/status") => match self.status() {
                Ok(v) => Answer {
                    status: 200,
                    content_type: "application/json",
                    body: v.to_string().into_bytes(),
                },
                Err(e) => Answer {
                    status: 500,
                    content_type: "application/json",
                    body: json!({ "error": e }).to_string().into_bytes(),
                },
            },
            _ => Answer {
                status: 404,
                content_type: "text/plain; charset=utf-8",
                body: b"not found\n".to_vec(),
            },
        }
    }
}
