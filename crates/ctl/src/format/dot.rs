//! `health graph`: the cluster's connectivity graph as a Graphviz DOT file,
//! byte for byte what Go's ctl writes (`cmd/ipfs-cluster-ctl/graph.go` over
//! `ipfs-cluster/go-dot`): cluster peers as orange 3-D boxes (the contacted
//! peer with a double border, trusted peers `T<n>`), IPFS daemons as
//! turquoise cylinders, a red "Errored" cylinder with a dotted edge for a
//! cluster peer whose IPFS daemon is unknown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use api::types::ConnectGraph;

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    SelfCluster,
    Cluster,
    TrustedCluster,
    Ipfs,
    IpfsMissing,
}

/// The node ids (`C0`, `T1`, `I2`) given so far, in order.
#[derive(Default)]
struct Nodes {
    cluster: BTreeMap<String, String>,
    ipfs: BTreeMap<String, String>,
}

/// Renders the graph; `all_ipfs` also draws IPFS swarm peers that are not
/// the daemon of a cluster peer. Like Go's, the text ends with `}` and no
/// newline.
pub(crate) fn make_dot(g: &ConnectGraph, all_ipfs: bool) -> String {
    // IPFS edges: only towards daemons of the graph unless all_ipfs, which
    // also gives every swarm peer a (possibly edgeless) node.
    let mut ipfs_edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, peers) in &g.ipfs_links {
        let mut kept = Vec::new();
        for id in peers {
            if all_ipfs || g.ipfs_links.contains_key(id) {
                kept.push(id.as_str());
            }
        }
        ipfs_edges.insert(k.as_str(), kept);
    }
    if all_ipfs {
        for peers in g.ipfs_links.values() {
            for id in peers {
                ipfs_edges.entry(id.as_str()).or_default();
            }
        }
    }

    let mut out = String::from("digraph cluster {\n");
    let mut nodes = Nodes::default();

    out.push_str("/* The nodes of the connectivity graph */\n");
    out.push_str("/* The cluster-service peers */\n");
    out.push_str("subgraph  {\nrank=\"min\"\n");
    for k in g.cluster_links.keys() {
        let kind = if *k == g.cluster_id {
            NodeKind::SelfCluster
        } else if g.cluster_trust_links.get(k).copied().unwrap_or(false) {
            NodeKind::TrustedCluster
        } else {
            NodeKind::Cluster
        };
        add_node(&mut out, &mut nodes, g, k, kind);
    }
    out.push_str("}\n\n");

    out.push_str("/* The ipfs peers */\n");
    out.push_str("subgraph  {\nrank=\"max\"\n");
    for k in ipfs_edges.keys() {
        add_node(&mut out, &mut nodes, g, k, NodeKind::Ipfs);
    }
    for k in g.cluster_links.keys() {
        if !g.cluster_to_ipfs.contains_key(k) {
            add_node(&mut out, &mut nodes, g, k, NodeKind::IpfsMissing);
        }
    }
    out.push_str("}\n\n");

    out.push_str("/* Edges representing active connections in the cluster */\n");
    out.push_str("/* The connections among cluster-service peers */\n");
    for (k, peers) in &g.cluster_links {
        for id in peers {
            if let (Some(from), Some(to)) = (nodes.cluster.get(k), nodes.cluster.get(id)) {
                edge(&mut out, from, to, "");
            }
        }
    }
    out.push('\n');

    out.push_str("/* The connections between cluster peers and their ipfs daemons */\n");
    for k in g.cluster_links.keys() {
        let Some(from) = nodes.cluster.get(k) else {
            continue;
        };
        match g.cluster_to_ipfs.get(k) {
            // A missing daemon's node is keyed by the cluster peer.
            None => {
                if let Some(to) = nodes.ipfs.get(k) {
                    edge(&mut out, from, to, "dotted");
                }
            }
            Some(ipfs_id) => {
                if let Some(to) = nodes.ipfs.get(ipfs_id) {
                    edge(&mut out, from, to, "");
                }
            }
        }
    }
    out.push('\n');

    out.push_str("/* The swarm peer connections among ipfs daemons in the cluster */\n");
    for (k, peers) in &ipfs_edges {
        let Some(from) = nodes.ipfs.get(*k) else {
            continue;
        };
        for id in peers {
            if let Some(to) = nodes.ipfs.get(*id) {
                edge(&mut out, from, to, "");
            }
        }
    }
    out.push('}');
    out
}

fn add_node(out: &mut String, nodes: &mut Nodes, g: &ConnectGraph, id: &str, kind: NodeKind) {
    let peername = g.id_to_peername.get(id).map(String::as_str).unwrap_or("");
    let (node_id, label, color, shape, peripheries) = match kind {
        NodeKind::SelfCluster => (
            format!("C{}", nodes.cluster.len()),
            label(peername, &shorten(id)),
            "orange",
            "box3d",
            2,
        ),
        NodeKind::TrustedCluster => (
            format!("T{}", nodes.cluster.len()),
            label(peername, &shorten(id)),
            "orange",
            "box3d",
            0,
        ),
        NodeKind::Cluster => (
            format!("C{}", nodes.cluster.len()),
            label(peername, &shorten(id)),
            "darkorange3",
            "box3d",
            0,
        ),
        NodeKind::Ipfs => (
            format!("I{}", nodes.ipfs.len()),
            label("IPFS", &shorten(id)),
            "turquoise3",
            "cylinder",
            0,
        ),
        NodeKind::IpfsMissing => (
            format!("I{}", nodes.ipfs.len()),
            label("IPFS", "Errored"),
            "firebrick1",
            "cylinder",
            0,
        ),
    };
    // go-dot writes the non-empty fields of VertexDescription in
    // declaration order; HTML-like labels (starting with '<') unquoted.
    let _ = write!(
        out,
        "{node_id} [label={label} group=\"{id}\" color=\"{color}\" style=\"filled\" colorscheme=\"x11\" \
         fontcolor=\"black\" fontname=\"Arial\" shape=\"{shape}\" "
    );
    if peripheries != 0 {
        let _ = write!(out, "peripheries=\"{peripheries}\" ");
    }
    out.push_str("]\n");
    match kind {
        NodeKind::Ipfs | NodeKind::IpfsMissing => nodes.ipfs.insert(id.to_string(), node_id),
        _ => nodes.cluster.insert(id.to_string(), node_id),
    };
}

fn edge(out: &mut String, from: &str, to: &str, style: &str) {
    let _ = write!(out, "{from} -> {to}");
    if !style.is_empty() {
        let _ = write!(out, " [ style=\"{style}\" ]");
    }
    out.push('\n');
}

/// `Qm*eqhEhD`: the first two and last six characters of a peer ID.
fn shorten(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 8 {
        return id.to_string();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}*{tail}")
}

fn label(peername: &str, id: &str) -> String {
    format!("< <B> {peername} </B> <BR/> <B> {id} </B> >")
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD";
    const P2: &str = "QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ";
    const P3: &str = "QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu";
    const P4: &str = "QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV";
    const P5: &str = "QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq";
    const P6: &str = "QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL";
    const P7: &str = "QmQsdAdCHs4PRLi5tcoLfasYppryqQENxgAy4b2aS8xccb";
    const P8: &str = "QmVV2enwXqqQf5esx4v36UeaFQvFehSPzNfi8aaaaaanM8";
    const P9: &str = "QmfCHNQ2vbUmAuJZhE2hEpgiJq4sL1XScWEKnUrVtWZdeD";

    fn links(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn graph(ipfs: &[(&str, &[&str])]) -> ConnectGraph {
        ConnectGraph {
            cluster_id: P1.into(),
            cluster_links: links(&[(P1, &[P2, P3]), (P2, &[P1, P3]), (P3, &[P1, P2])]),
            ipfs_links: links(ipfs),
            cluster_to_ipfs: [(P1, P4), (P2, P5), (P3, P6)]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..ConnectGraph::default()
        }
    }

    fn assert_lines(got: &str, want: &str) {
        let (g, w): (Vec<_>, Vec<_>) = (got.split('\n').collect(), want.split('\n').collect());
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            assert_eq!(a, b, "line {i}");
        }
        assert_eq!(g.len(), w.len(), "number of lines");
    }

    const CLUSTER_NODES: &str = r#"digraph cluster {
/* The nodes of the connectivity graph */
/* The cluster-service peers */
subgraph  {
rank="min"
C0 [label=< <B>  </B> <BR/> <B> Qm*eqhEhD </B> > group="QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD" color="orange" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" peripheries="2" ]
C1 [label=< <B>  </B> <BR/> <B> Qm*cgHDQJ </B> > group="QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ" color="darkorange3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" ]
C2 [label=< <B>  </B> <BR/> <B> Qm*6MQmJu </B> > group="QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu" color="darkorange3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" ]
}
"#;

    /// Go's `TestSimpleIpfsGraphs` expectation (graph_test.go).
    #[test]
    fn simple_ipfs_graph_matches_go() {
        let want = CLUSTER_NODES.to_string()
            + r#"
/* The ipfs peers */
subgraph  {
rank="max"
I0 [label=< <B> IPFS </B> <BR/> <B> Qm*N5LSsq </B> > group="QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I1 [label=< <B> IPFS </B> <BR/> <B> Qm*R3DZDV </B> > group="QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I2 [label=< <B> IPFS </B> <BR/> <B> Qm*wbBsuL </B> > group="QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
}

/* Edges representing active connections in the cluster */
/* The connections among cluster-service peers */
C0 -> C1
C0 -> C2
C1 -> C0
C1 -> C2
C2 -> C0
C2 -> C1

/* The connections between cluster peers and their ipfs daemons */
C0 -> I1
C1 -> I0
C2 -> I2

/* The swarm peer connections among ipfs daemons in the cluster */
I0 -> I1
I0 -> I2
I1 -> I0
I1 -> I2
I2 -> I1
I2 -> I0
}"#;
        let g = graph(&[(P4, &[P5, P6]), (P5, &[P4, P6]), (P6, &[P4, P5])]);
        assert_lines(&make_dot(&g, false), &want);
    }

    /// Go's `TestIpfsAllGraphs` expectation.
    #[test]
    fn all_ipfs_graph_matches_go() {
        let want = CLUSTER_NODES.to_string()
            + r#"
/* The ipfs peers */
subgraph  {
rank="max"
I0 [label=< <B> IPFS </B> <BR/> <B> Qm*N5LSsq </B> > group="QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I1 [label=< <B> IPFS </B> <BR/> <B> Qm*S8xccb </B> > group="QmQsdAdCHs4PRLi5tcoLfasYppryqQENxgAy4b2aS8xccb" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I2 [label=< <B> IPFS </B> <BR/> <B> Qm*aaanM8 </B> > group="QmVV2enwXqqQf5esx4v36UeaFQvFehSPzNfi8aaaaaanM8" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I3 [label=< <B> IPFS </B> <BR/> <B> Qm*R3DZDV </B> > group="QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I4 [label=< <B> IPFS </B> <BR/> <B> Qm*wbBsuL </B> > group="QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I5 [label=< <B> IPFS </B> <BR/> <B> Qm*tWZdeD </B> > group="QmfCHNQ2vbUmAuJZhE2hEpgiJq4sL1XScWEKnUrVtWZdeD" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
}

/* Edges representing active connections in the cluster */
/* The connections among cluster-service peers */
C0 -> C1
C0 -> C2
C1 -> C0
C1 -> C2
C2 -> C0
C2 -> C1

/* The connections between cluster peers and their ipfs daemons */
C0 -> I3
C1 -> I0
C2 -> I4

/* The swarm peer connections among ipfs daemons in the cluster */
I0 -> I3
I0 -> I4
I0 -> I1
I0 -> I2
I0 -> I5
I3 -> I0
I3 -> I4
I3 -> I1
I3 -> I2
I3 -> I5
I4 -> I3
I4 -> I0
I4 -> I1
I4 -> I2
I4 -> I5
}"#;
        let g = graph(&[
            (P4, &[P5, P6, P7, P8, P9]),
            (P5, &[P4, P6, P7, P8, P9]),
            (P6, &[P4, P5, P7, P8, P9]),
        ]);
        assert_lines(&make_dot(&g, true), &want);
    }

    #[test]
    fn missing_daemon_trusted_peer_and_names() {
        let mut g = graph(&[(P4, &[P5]), (P5, &[P4])]);
        g.cluster_to_ipfs.remove(P3);
        g.cluster_trust_links.insert(P2.into(), true);
        g.id_to_peername.insert(P1.into(), "alpha".into());
        let dot = make_dot(&g, false);
        assert!(
            dot.contains("C0 [label=< <B> alpha </B> <BR/> <B> Qm*eqhEhD </B> >"),
            "{dot}"
        );
        assert!(dot.contains("\nT1 [label=< <B>  </B>"), "{dot}");
        assert!(
            dot.contains("\nI2 [label=< <B> IPFS </B> <BR/> <B> Errored </B> > group=\"QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu\" color=\"firebrick1\""),
            "{dot}"
        );
        assert!(dot.contains("\nC2 -> I2 [ style=\"dotted\" ]\n"), "{dot}");
        assert!(dot.contains("\nC0 -> T1\n"), "{dot}");
    }
}
