//! The environment's `HYRANK_*` variables checked against the server's settings: a name one or
//! two edits from a setting's (`HYRANK_SEARCHKEY` for `HYRANK_SEARCH_KEY`) is a typo, and left
//! unread it started the server with that setting unset (with /v1 open, for a key), where the
//! same typo in the `--config` file is refused by name.

use clap::CommandFactory;

use super::{SettingsError, SettingsLayer};

/// Refuses a variable of `names` that is no server setting but is within two edits of a
/// setting's (Levenshtein distance, `strsim`), naming the
/// setting it would be. Other `HYRANK_*` names pass: scripts may set their own.
///
/// # Errors
/// [`SettingsError`] naming the variable and the setting it is near.
pub(super) fn check_names(names: impl Iterator<Item = String>) -> Result<(), SettingsError> {
    let command = SettingsLayer::command();
    let settings: Vec<String> =
        command.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect();
    for name in names.filter(|n| n.starts_with("HYRANK_")) {
        if settings.contains(&name) {
            continue;
        }
        let near = settings.iter().map(|s| (strsim::levenshtein(s, &name), s)).filter(|(d, _)| *d <= 2).min();
        if let Some((_, setting)) = near {
            return Err(SettingsError(format!(
                "environment variable {name} is no setting of hyrank-serve; did you mean {setting}? (rename or \
                 unset it)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `HYRANK_*` variables that hyrank's other commands and its libraries read (`hyrank`, the
    /// engine's kernels and profiles): none may be within two edits of a setting, or the server
    /// would refuse to start beside it.
    const READ_ELSEWHERE: &[&str] = &[
        "HYRANK_LOG",
        "HYRANK_LOG_FORMAT",
        "HYRANK_CPU_KERNELS",
        "HYRANK_GPU_TF32",
        "HYRANK_NO_AVX512",
        "HYRANK_NO_VNNI",
        "HYRANK_EMBED_PROFILE",
        "HYRANK_RERANK_PROFILE",
        "HYRANK_RERANK_STATES",
        "HYRANK_RERANK_QUERY_STATES",
        "HYRANK_RERANK_PASS_PAIRS",
        "HYRANK_CATALOG",
        "HYRANK_INTERACTIONS",
        "HYRANK_EVAL_DATA",
        "HYRANK_S3_CONFIG",
        "HYRANK_S3_ENDPOINT",
        "HYRANK_S3_REGION",
        "HYRANK_S3_ACCESS_KEY_ID",
        "HYRANK_S3_SECRET_ACCESS_KEY",
        "HYRANK_S3_ALLOW_HTTP",
        "HYRANK_NO_HELPERS",
    ];

    #[test]
    fn a_variable_two_edits_from_a_setting_is_refused_and_others_pass() {
        let check = |names: &[&str]| check_names(names.iter().map(|n| n.to_string())).map_err(|e| e.to_string());
        let error = check(&["PATH", "HYRANK_SEARCHKEY"]).unwrap_err();
        assert!(error.contains("HYRANK_SEARCHKEY is no setting") && error.contains("HYRANK_SEARCH_KEY?"), "{error}");
        assert!(check(&["HYRANK_ADMIN_KYE"]).unwrap_err().contains("HYRANK_ADMIN_KEY?"));
        assert!(check(&["HYRANK_WORKER"]).unwrap_err().contains("HYRANK_WORKERS?"));
        // Settings, what hyrank's other parts read, and names far from any setting pass.
        let mut fine = vec!["HYRANK_SEARCH_KEY", "HYRANK_MAX_K", "HYRANK_MY_SCRIPT_DIR", "OTHER"];
        // The scripts' and tests' own variables.
        fine.extend(["HYRANK_SERVE_BIN", "HYRANK_ARTIFACTS", "HYRANK_BENCH_CORPUS", "HYRANK_NO_WAIT"]);
        fine.extend(["HYRANK_CARGO_LOCK", "HYRANK_TEST_S3_PORT", "HYRANK_FUZZ_CASES"]);
        fine.extend(["HYRANK_FUZZ_REQUESTS", "HYRANK_LIVE_CHILD_INDEX", "HYRANK_KILL_CHILD_STAGE"]);
        fine.extend(READ_ELSEWHERE);
        assert_eq!(check(&fine), Ok(()));
    }
}
