//! Where a replica pulls generations from (`source` and its S3 settings), and what a replica
//! refuses to be given: settings of writes it never takes.

use super::{bad, SettingsError, SettingsLayer};

/// Where a replica pulls generations from, and the S3 client settings given in the layers
/// (on top of the `AWS_*` environment, which `object_store` reads itself).
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSettings {
    /// `s3://bucket/prefix` or `file:///folder`.
    pub url: String,
    /// `object_store`'s S3 option keys and their values.
    pub options: Vec<(&'static str, String)>,
}

impl SourceSettings {
    /// The options as [`hyrank_engine::generation::remote::Remote::open_with`] takes them.
    pub fn option_pairs(&self) -> Vec<(&str, &str)> {
        self.options.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// Names the options but never shows a credential.
impl std::fmt::Debug for SourceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<(&str, &str)> =
            self.options.iter().map(|(k, v)| (*k, if k.contains("key") { "(hidden)" } else { v.as_str() })).collect();
        f.debug_struct("SourceSettings").field("url", &self.url).field("options", &shown).finish()
    }
}

/// The source the layers name, with its S3 options; `None` for a server on its own index folder.
/// `write_key` says whether the layers set a write key.
///
/// # Errors
/// An S3 setting without a source, or on a `file://` one; on a replica, a write key or a
/// bound of writes (`max_events`, `max_live_items`, `max_live_events`): a replica takes no
/// writes.
pub(super) fn resolve(layer: &SettingsLayer, write_key: bool) -> Result<Option<SourceSettings>, SettingsError> {
    let Some(url) = layer.source.clone() else {
        let stray = [
            ("source_endpoint", layer.source_endpoint.is_some()),
            ("source_region", layer.source_region.is_some()),
            ("source_access_key_id", layer.source_access_key_id.is_some()),
            ("source_secret_access_key", layer.source_secret_access_key.is_some()),
            ("source_allow_http", layer.source_allow_http.is_some()),
        ];
        if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(bad(name, "is set but there is no source to use it with".into()));
        }
        return Ok(None);
    };
    // Bounds of writes it will never take are moot on a replica.
    let moot = [
        ("max_events", layer.max_events.is_some()),
        ("max_live_items", layer.max_live_items.is_some()),
        ("max_live_events", layer.max_live_events.is_some()),
    ];
    if let Some((name, _)) = moot.iter().find(|(_, set)| *set) {
        return Err(bad(name, format!("bounds writes, and a replica (source {url}) takes none")));
    }
    if write_key {
        return Err(bad(
            "write_key",
            format!(
                "a replica (source {url}) takes no writes: its index folder is a copy of the published generations, \
                 and no build reads what is written there; send writes to the server whose index folder the \
                 publisher builds from"
            ),
        ));
    }
    let options = hyrank_engine::generation::remote::s3_options(
        layer.source_endpoint.clone(),
        layer.source_region.clone(),
        layer.source_access_key_id.as_ref().map(|k| k.expose().to_string()),
        layer.source_secret_access_key.as_ref().map(|k| k.expose().to_string()),
        layer.source_allow_http,
    );
    if url.starts_with("file://") && !options.is_empty() {
        return Err(bad("source", format!("{url} is a folder; the source_* S3 settings do not apply")));
    }
    Ok(Some(SourceSettings { url, options }))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::parse;
    use super::super::ServerSettings;
    use super::*;

    #[test]
    fn the_source_takes_its_s3_settings_from_the_layers_and_never_shows_the_secret() {
        let file: SettingsLayer = toml::from_str(
            "source = \"s3://bucket/prod\"\nsource_endpoint = \"http://127.0.0.1:8333\"\ncache_dir = \"/var/cache/hyrank\"",
        )
        .unwrap();
        let cli = parse(&["--source-secret-access-key", "s3cr3t-value", "--source-allow-http"]);
        let settings = ServerSettings::validate(cli.over(file)).unwrap();
        assert_eq!(settings.index_dir, PathBuf::from("/var/cache/hyrank"), "cache_dir is index_dir's other name");
        let source = settings.source.clone().unwrap();
        assert_eq!(source.url, "s3://bucket/prod");
        assert_eq!(
            source.option_pairs(),
            [
                ("aws_endpoint", "http://127.0.0.1:8333"),
                ("aws_secret_access_key", "s3cr3t-value"),
                ("aws_allow_http", "true")
            ]
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cr3t") && shown.contains("(hidden)") && shown.contains("8333"), "{shown}");
        assert_eq!(parse(&["--cache-dir", "/tmp/c"]).index_dir, Some(PathBuf::from("/tmp/c")));
    }
}
