//! `health graph`, `health metrics [name]`, `health alerts` and
//! `health bandwidth`.

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::Ctx;
use crate::args::HealthCommand;
use crate::format::Kind;
use crate::format::dot::{self, Graph};

/// Runs a `health` subcommand.
pub(crate) async fn run(ctx: &mut Ctx, command: HealthCommand) -> Result<()> {
    match command {
        HealthCommand::Graph {
            file,
            all_ipfs_peers,
        } => {
            let graph = ctx.api.call(|c| c.health_graph()).await?;
            let graph =
                graph_of(&serde_json::to_value(&graph).context("reading the API's answer")?);
            let text = dot::make_dot(&graph, all_ipfs_peers);
            match file {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("creating output file {}", path.display())),
                // Go's DOT ends without a newline; a terminal wants one.
                None => ctx.out.raw(&format!("{text}\n")),
            }
        }
        HealthCommand::Metrics { name: None } => {
            let names = ctx.api.call(|c| c.metric_names()).await?;
            ctx.out.list(Kind::Line, &names)
        }
        HealthCommand::Metrics { name: Some(name) } => {
            let metrics = ctx.api.call(|c| c.metrics(&name)).await?;
            ctx.out.list(Kind::Metric, &metrics)
        }
        HealthCommand::Alerts => {
            let alerts = ctx.api.call(|c| c.alerts()).await?;
            ctx.out.list(Kind::Alert, &alerts)
        }
        HealthCommand::Bandwidth => {
            let stats = ctx.api.call(|c| c.bandwidth()).await?;
            ctx.out.item(Kind::Bandwidth, &stats)
        }
    }
}

/// The graph from the API's `ConnectGraph` JSON (Go's field names).
fn graph_of(v: &Value) -> Graph {
    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn map<T>(
        v: &Value,
        key: &str,
        f: impl Fn(&Value) -> Option<T>,
    ) -> std::collections::BTreeMap<String, T> {
        v.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), f(v)?)))
                    .collect()
            })
            .unwrap_or_default()
    }
    Graph {
        cluster_id: v
            .get("cluster_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        id_to_peername: map(v, "id_to_peername", |s| s.as_str().map(str::to_string)),
        ipfs_links: map(v, "ipfs_links", |l| Some(strings(l))),
        cluster_links: map(v, "cluster_links", |l| Some(strings(l))),
        cluster_trust_links: map(v, "cluster_trust_links", Value::as_bool),
        cluster_to_ipfs: map(v, "cluster_to_ipfs", |s| s.as_str().map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_from_go_json() {
        let g = graph_of(&json!({
            "cluster_id": "QmA",
            "id_to_peername": {"QmA": "alpha"},
            "ipfs_links": {"QmI": ["QmJ"]},
            "cluster_links": {"QmA": ["QmB"], "QmB": []},
            "cluster_trust_links": {"QmB": true},
            "cluster_to_ipfs": {"QmA": "QmI"}
        }));
        assert_eq!(g.cluster_id, "QmA");
        assert_eq!(
            g.id_to_peername.get("QmA").map(String::as_str),
            Some("alpha")
        );
        assert_eq!(g.ipfs_links.get("QmI"), Some(&vec!["QmJ".to_string()]));
        assert_eq!(g.cluster_links.len(), 2);
        assert_eq!(g.cluster_trust_links.get("QmB"), Some(&true));
        assert_eq!(
            g.cluster_to_ipfs.get("QmA").map(String::as_str),
            Some("QmI")
        );
    }
}
