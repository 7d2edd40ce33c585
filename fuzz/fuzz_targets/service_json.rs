//! Feeds `service.json` to the peer's config reading, as the daemon reads
//! it: input is `<json>\0<KEY=VALUE lines>`; `ServiceConfig::from_json_str`,
//! the environment overrides (`apply_env_with_warnings`), then
//! `PeerSettings::from_config` and the REST section's `RestConfig::from_json`.
//! A config that loads must save (`to_json_string`) and load back equal.
#![no_main]

use std::path::Path;

use ipfs_cluster_fuzz::peer_id;
use libfuzzer_sys::fuzz_target;
use peer::PeerSettings;
use peer::config::ServiceConfig;

fuzz_target!(|data: &[u8]| {
    let (json, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    let Ok((mut cfg, _warnings)) = ServiceConfig::from_json_str(json) else {
        return;
    };
    let saved = cfg.to_json_string();
    let (back, _) = ServiceConfig::from_json_str(&saved).expect("a loaded config loads once saved");
    assert_eq!(back, cfg);

    let vars: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if cfg.apply_env_with_warnings(vars.into_iter()).is_ok() && cfg.validate().is_ok() {
        let saved = cfg.to_json_string();
        let (back, _) =
            ServiceConfig::from_json_str(&saved).expect("a config with env overrides saves");
        assert_eq!(back, cfg);
    }
    let _ = PeerSettings::from_config(&cfg, Path::new("/nonexistent/fuzz"), peer_id(1));
    if let Some(section) = cfg.api.as_ref().and_then(|a| a.get("restapi")) {
        let _ = api::server::RestConfig::from_json(section);
    }
});
