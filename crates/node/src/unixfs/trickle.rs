//! The trickle layout (boxo `importer/trickle`, `ipfs add --trickle`): a
//! node first takes up to `max_links` leaves, then subtrees of depth 1, 2,
//! 3, ... four of each, where a subtree of depth d is built the same way
//! but stops before depth d. The root has no depth limit, and is a node
//! even for a file of one chunk (or none).
//!
//! Built as leaves arrive with an explicit stack of open nodes: a subtree
//! is opened only when a leaf needs it, and closed when its parent opens
//! a sibling past its depth limit (or at the end).

use super::file::{Child, Params};
use crate::{Block, NodeError};

/// Subtrees of each depth a trickle node takes (boxo's `depthRepeat`).
const DEPTH_REPEAT: usize = 4;

/// An open node.
#[derive(Debug)]
struct Frame {
    children: Vec<Child>,
    /// Subtrees stop before this depth (`None`: the root, unlimited).
    max_depth: Option<usize>,
    /// Still taking leaves directly.
    filling_leaves: bool,
    /// The depth of the next subtree to open.
    next_depth: usize,
    /// How many subtrees of `next_depth` are already open or closed.
    opened_at_depth: usize,
}

impl Frame {
    fn new(max_depth: Option<usize>) -> Self {
        Frame {
            children: Vec::new(),
            max_depth,
            filling_leaves: true,
            next_depth: 1,
            opened_at_depth: 0,
        }
    }
}

/// The open nodes of a trickle tree, root first.
#[derive(Debug)]
pub(crate) struct Trickle {
    stack: Vec<Frame>,
}

impl Trickle {
    pub(crate) fn new() -> Self {
        Trickle {
            stack: vec![Frame::new(None)],
        }
    }

    /// Adds the next leaf.
    pub(crate) fn push_leaf(
        &mut self,
        leaf: Child,
        params: &Params,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        loop {
            let top = self.stack.last_mut().expect("the root frame stays");
            if top.filling_leaves {
                if top.children.len() < params.max_links {
                    top.children.push(leaf);
                    return Ok(());
                }
                top.filling_leaves = false;
            }
            if top.opened_at_depth == DEPTH_REPEAT {
                top.next_depth += 1;
                top.opened_at_depth = 0;
            }
            if top.max_depth.is_some_and(|max| top.next_depth >= max) {
                // This subtree is complete: close it into its parent.
                self.close_top(params, sink)?;
            } else {
                let depth = top.next_depth;
                top.opened_at_depth += 1;
                self.stack.push(Frame::new(Some(depth)));
            }
        }
    }

    fn close_top(
        &mut self,
        params: &Params,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Child, NodeError> {
        let frame = self.stack.pop().expect("a frame to close");
        let node = params.file_node(&frame.children, sink)?;
        if let Some(parent) = self.stack.last_mut() {
            parent.children.push(node);
        }
        Ok(node)
    }

    /// Closes every open node; the root.
    pub(crate) fn finish(
        mut self,
        params: &Params,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Child, NodeError> {
        loop {
            let node = self.close_top(params, sink)?;
            if self.stack.is_empty() {
                return Ok(node);
            }
        }
    }
}
