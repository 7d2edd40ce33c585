//! The balanced layout (boxo `importer/balanced`, Kubo's default): leaves
//! fill a node of up to `max_links` children, full nodes fill the level
//! above, and the root is as shallow as the leaf count allows. A file of
//! one chunk is that chunk's leaf alone.
//!
//! Built bottom-up as leaves arrive: one open node per level, each closed
//! only when a further child needs its place (or at the end), which is
//! the same tree boxo's depth-first fill produces.

use super::file::{Child, Params};
use crate::{Block, NodeError};

/// The open nodes of a balanced tree, lowest level first.
#[derive(Debug)]
pub(crate) struct Balanced {
    levels: Vec<Vec<Child>>,
}

impl Balanced {
    pub(crate) fn new() -> Self {
        Balanced { levels: Vec::new() }
    }

    /// Adds the next leaf.
    pub(crate) fn push_leaf(
        &mut self,
        leaf: Child,
        params: &Params,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        self.push_at(0, leaf, params, sink)
    }

    /// Puts `child` in the open node of `level`; a full one is closed
    /// first and carried up as a child of the level above.
    fn push_at(
        &mut self,
        mut level: usize,
        mut child: Child,
        params: &Params,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        loop {
            if level == self.levels.len() {
                self.levels.push(Vec::with_capacity(params.max_links));
            }
            let open = &mut self.levels[level];
            if open.len() < params.max_links {
                open.push(child);
                return Ok(());
            }
            let full = std::mem::replace(open, Vec::with_capacity(params.max_links));
            open.push(child);
            child = params.file_node(&full, sink)?;
            level += 1;
        }
    }

    /// Closes every open node; the root, or `None` when no leaf came.
    pub(crate) fn finish(
        mut self,
        params: &Params,
        sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
    ) -> Result<Option<Child>, NodeError> {
        if let [only] = self.levels.as_slice()
            && let [leaf] = only.as_slice()
        {
            return Ok(Some(*leaf));
        }
        let mut level = 0;
        while level < self.levels.len() {
            let children = std::mem::take(&mut self.levels[level]);
            let node = params.file_node(&children, sink)?;
            if level + 1 == self.levels.len() {
                return Ok(Some(node));
            }
            self.push_at(level + 1, node, params, sink)?;
            level += 1;
        }
        Ok(None)
    }
}
