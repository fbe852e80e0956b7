//! Where the server listens, with how many workers, and which browser pages may call it: the
//! `bind`, `workers` and `cors_origins` settings, checked at start-up so that a bad value names
//! its setting.

use std::net::SocketAddr;

/// The origins CORS lets read the API's answers from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: only same-origin pages (the server's own /ui) can read answers.
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// These origins exactly, as browsers send them (`https://shop.example.com`).
    List(Vec<String>),
}

impl std::str::FromStr for CorsOrigins {
    type Err = String;

    /// `*`, or a comma-separated list of `scheme://host[:port]` origins.
    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        if parts == ["*"] {
            return Ok(CorsOrigins::Any);
        }
        if parts.is_empty() {
            return Ok(CorsOrigins::None);
        }
        for origin in &parts {
            let (scheme, authority) = origin.split_once("://").unwrap_or(("", ""));
            let well_formed = matches!(scheme, "http" | "https")
                && !authority.is_empty()
                && !authority.contains(['/', '?', '#', '*', ' '])
                && !origin.bytes().any(|b| b.is_ascii_uppercase())
                // What actix-cors parses each origin as; one it cannot parse would stop every
                // worker at start-up instead of naming the setting.
                && origin.parse::<actix_web::http::Uri>().is_ok()
                && (authority.ends_with(']')
                    || authority.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_ok()));
            if !well_formed {
                return Err(format!(
                    "{origin:?} is not an origin: give scheme://host[:port] in lower case, without a path or a \
                     trailing slash (https://shop.example.com), or * alone for any origin"
                ));
            }
        }
        Ok(CorsOrigins::List(parts.into_iter().map(str::to_string).collect()))
    }
}

/// The most HTTP workers: actix-server panics on more (after the model and the index have
/// loaded), so more is refused as a setting.
pub const MAX_WORKERS: usize = 512;

/// The `workers` setting checked: from 1 to [`MAX_WORKERS`].
pub(super) fn check_workers(workers: usize) -> std::result::Result<usize, String> {
    match workers {
        0 => Err("must be at least 1".into()),
        w if w > MAX_WORKERS => Err(format!("must be at most {MAX_WORKERS} (actix's bound), got {w}")),
        w => Ok(w),
    }
}

/// The addresses of a `bind` setting: `IP:PORT` (`0.0.0.0:8080`, `[::]:8080`) or
/// `HOST:PORT`, resolved now, so that a name that does not resolve is a settings error rather
/// than a failure after the model has loaded. The server listens on every address it can bind
/// (actix skips one it cannot, such as `[::1]` on a host without IPv6, if another binds).
pub(super) fn resolve_bind(text: &str) -> std::result::Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(vec![address]);
    }
    let usage = "an address like 127.0.0.1:8080, [::]:8080 or localhost:8080";
    let Some((_, port)) = text.rsplit_once(':').filter(|(host, port)| !host.is_empty() && !port.is_empty()) else {
        return Err(format!("{text:?} is not {usage} (a host and a port)"));
    };
    if port.parse::<u16>().is_err() {
        // Digits past a port's range are a port out of range, not a missing one.
        let why = match port.bytes().all(|b| b.is_ascii_digit()) {
            true => "is out of range: a port is from 0 to 65535".to_string(),
            false => "is not a port number".to_string(),
        };
        return Err(format!("{text:?}: port {port:?} {why}; give {usage}"));
    }
    let addresses: Vec<SocketAddr> =
        text.to_socket_addrs().map_err(|e| format!("{text:?} does not resolve ({e}); give {usage}"))?.collect();
    if addresses.is_empty() {
        return Err(format!("{text:?} resolves to no address; give {usage}"));
    }
    // Port 0 asks for a free port per address: a name resolving to several would listen on a
    // different port for each.
    if addresses.len() > 1 && addresses[0].port() == 0 {
        return Err(format!(
            "{text:?} resolves to {} addresses, and port 0 would give each its own port; give an IP",
            addresses.len()
        ));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_takes_an_address_or_a_host_name_and_port() {
        let local = resolve_bind("localhost:8080").unwrap();
        assert!(local.contains(&"127.0.0.1:8080".parse().unwrap()), "{local:?}");
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 8080), "{local:?}");
        assert_eq!(resolve_bind("[::]:0").unwrap(), ["[::]:0".parse::<SocketAddr>().unwrap()]);
        for (bad, expected) in [
            ("localhost", "is not an address like"),
            ("127.0.0.1", "(a host and a port)"),
            (":8080", "(a host and a port)"),
            ("localhost:99999", "port \"99999\" is out of range: a port is from 0 to 65535"),
            ("127.0.0.1:http", "port \"http\" is not a port number"),
            ("127.0.0.1:", "(a host and a port)"),
            ("no-such-host.invalid:8080", "does not resolve"),
        ] {
            let error = resolve_bind(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn cors_origins_are_a_list_or_any() {
        assert_eq!("".parse::<CorsOrigins>().unwrap(), CorsOrigins::None);
        assert_eq!("*".parse::<CorsOrigins>().unwrap(), CorsOrigins::Any);
        assert_eq!(
            "https://shop.example.com, http://localhost:3000,".parse::<CorsOrigins>().unwrap(),
            CorsOrigins::List(vec!["https://shop.example.com".into(), "http://localhost:3000".into()])
        );
        assert!("http://[::1]:3000".parse::<CorsOrigins>().is_ok());
        for bad in [
            "https://shop.example.com/",
            "shop.example.com",
            "https://a.example, *",
            "https://Shop.example",
            "https://shop.example:99999",
            "https://a\u{1}b",
        ] {
            let error = bad.parse::<CorsOrigins>().unwrap_err();
            assert!(error.contains("is not an origin"), "{bad}: {error}");
        }
    }
}
