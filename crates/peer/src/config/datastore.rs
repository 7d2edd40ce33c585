//! The `datastore` section: ours is `datastore.sled`; Go's datastores are
//! kept verbatim and reported as not used.

use super::*;

pub(super) const GO_DATASTORES: [&str; 4] = ["pebble", "badger3", "badger", "leveldb"];

/// The `datastore` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DatastoreConfig {
    /// `datastore.sled`: where this peer keeps its state.
    pub sled: SledConfig,
    /// Go's datastores (`pebble`, `badger3`, `badger`, `leveldb`, unused)
    /// and unknown keys, kept as they were.
    pub extra: Map<String, Value>,
}

/// `datastore.sled`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SledConfig {
    /// `folder`, relative to the config folder. **Default:** `sled`.
    pub folder: String,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

impl Default for SledConfig {
    fn default() -> Self {
        Self {
            folder: DEFAULT_SLED_FOLDER.to_owned(),
            extra: Map::new(),
        }
    }
}

pub(super) fn parse_datastore(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<DatastoreConfig> {
    let sled = match obj.object("sled")? {
        None => SledConfig::default(),
        Some(mut o) => SledConfig {
            folder: o
                .string("folder")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SLED_FOLDER.to_owned()),
            extra: o.finish(w),
        },
    };
    for k in obj.remaining_keys() {
        if GO_DATASTORES.contains(&k.as_str()) {
            w.push(ConfigWarning::new(
                obj.key(&k),
                WarningKind::NotUsed,
                format!(
                    "Go's {k} datastore is not used: this peer keeps its state in sled \
                     (datastore.sled.folder = {:?}); the section is kept",
                    sled.folder
                ),
            ));
        } else {
            w.push(ConfigWarning::new(
                obj.key(&k),
                WarningKind::UnknownKey,
                "unknown key: ignored, and kept when the file is saved",
            ));
        }
    }
    Ok(DatastoreConfig {
        sled,
        extra: obj.into_rest(),
    })
}
