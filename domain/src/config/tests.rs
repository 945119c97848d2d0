use super::*;
use std::path::{Path, PathBuf};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_yaml_and_env(yaml, env(vars))
}

#[test]
fn the_contract_file_loads_with_its_defaults() {
    let yaml = include_str!("../../../config.yaml");
    let config = load(yaml, &[]).unwrap();
    assert_eq!(config.transport.kind, TransportKind::Socketio);
    assert_eq!(config.users.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(config.mailer.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.transport.amqp.queue, "facteur.mail.requests");
    assert!(config.mailer.smtp.is_none());
    assert_eq!(config.mailer.max_attempts, 8);
    assert_eq!(config.mailer.retention.records_days, 400);
    assert_eq!(config.mailer.worker_threads, 1);
    assert_eq!(config.mailer.from_domain(), "facteur.local");
    let defaults = load("{}", &[]).unwrap();
    assert_eq!(defaults.users.database, config.users.database);
    assert!(config.mailer.cluster.is_none());
    let clustered = load(
        "mailer: {database: 'postgres://db/mailer', cluster: {redis_url: 'redis://redis:6379'}}",
        &[],
    )
    .unwrap();
    assert_eq!(
        clustered.mailer.cluster.unwrap().redis_url,
        "redis://redis:6379"
    );
    assert!(config.mailer.dkim.is_none());
    assert!(config.mailer.bounces.is_none());
    assert!(!config.mailer.webhooks.allow_private_targets);
    assert_eq!(
        config.mailer.webhooks.retry_delays,
        [5, 300, 1800, 7200, 18000, 36000, 36000]
    );
    let signed = load(
        "",
        &[
            ("FACTEUR_MAILER__DKIM__DOMAIN", "facteur.example"),
            ("FACTEUR_MAILER__DKIM__SELECTOR", "2026"),
            (
                "FACTEUR_MAILER__DKIM__PRIVATE_KEY_FILE",
                "/etc/facteur/dkim.pem",
            ),
        ],
    )
    .unwrap()
    .mailer
    .dkim
    .unwrap();
    assert_eq!(
        (signed.domain.as_str(), signed.selector.as_str()),
        ("facteur.example", "2026")
    );
    assert_eq!(signed.private_key_file, Path::new("/etc/facteur/dkim.pem"));
}

#[test]
fn environment_variables_override_the_file() {
    let config = load(
        "transport: {kind: socketio}",
        &[
            ("FACTEUR_TRANSPORT__KIND", "amqp"),
            ("FACTEUR_MAILER__MAX_ATTEMPTS", "3"),
            ("FACTEUR_CONFIG", "ignored.yaml"),
            ("FACTEUR_REQUIRE_SERVICES", "1"),
        ],
    )
    .unwrap();
    assert_eq!(config.transport.kind, TransportKind::Amqp);
    assert_eq!(config.mailer.max_attempts, 3);
}

#[test]
fn numeric_secrets_from_the_environment_stay_exact_strings() {
    let config = load(
        "mailer: {smtp: {host: localhost, port: 25, tls: none}}",
        &[
            ("FACTEUR_MAILER__SMTP__PASSWORD", "0123"),
            ("FACTEUR_USERS__ADMIN_TOKEN", "12345"),
        ],
    )
    .unwrap();
    let smtp = config.mailer.smtp.unwrap();
    assert_eq!(smtp.password.unwrap().expose(), "0123");
    assert_eq!(config.users.admin_token.expose(), "12345");
    let from_yaml = load("users: {admin_token: 12345}", &[]).unwrap();
    assert_eq!(from_yaml.users.admin_token.expose(), "12345");
}

/// A YAML text, environment variables, and the key the error must name.
type BadCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn each_bad_value_names_its_key() {
    let cases: &[BadCase] = &[
        (
            "transport: {socketio: {url: 'ws://x'}}",
            &[],
            "transport.socketio.url",
        ),
        (
            "transport: {socketio: {url: 'nope'}}",
            &[],
            "transport.socketio.url",
        ),
        (
            "",
            &[("FACTEUR_TRANSPORT__KIND", "carrier-pigeon")],
            "transport.kind",
        ),
        ("users: {listen: 'localhost'}", &[], "users.listen"),
        (
            "",
            &[("FACTEUR_MAILER__LISTEN", "1.2.3.4:99999")],
            "mailer.listen",
        ),
        (
            "users: {reset_url: 'http://x/reset'}",
            &[],
            "users.reset_url",
        ),
        ("users: {database: 'mysql://x'}", &[], "users.database"),
        (
            "users: {verify_url: 'ftp://x/{token}'}",
            &[],
            "users.verify_url",
        ),
        (
            "users: {verify_url: 'http://x/verify'}",
            &[],
            "users.verify_url",
        ),
        (
            "users: {verification_ttl_hours: 0}",
            &[],
            "users.verification_ttl_hours",
        ),
        (
            "users: {verification_ttl_hours: 4000000000}",
            &[],
            "users.verification_ttl_hours",
        ),
        (
            "",
            &[("FACTEUR_USERS__REQUIRE_VERIFIED_EMAIL", "sometimes")],
            "users.require_verified_email",
        ),
        ("mailer: {from: 'nobody'}", &[], "mailer.from"),
        ("mailer: {max_attempts: 0}", &[], "mailer.max_attempts"),
        ("mailer: {max_attempts: -1}", &[], "mailer.max_attempts"),
        (
            "mailer: {retention: {records_days: 0}}",
            &[],
            "mailer.retention.records_days",
        ),
        (
            "",
            &[("FACTEUR_MAILER__RETENTION__RECORDS_DAYS", "forever")],
            "mailer.retention.records_days",
        ),
        ("mailer: {worker_threads: 0}", &[], "mailer.worker_threads"),
        (
            "",
            &[("FACTEUR_MAILER__WORKER_THREADS", "many")],
            "mailer.worker_threads",
        ),
        (
            "transport: {amqp: {url: 'http://x'}}",
            &[],
            "transport.amqp.url",
        ),
        ("users: {admin_token: ''}", &[], "users.admin_token"),
        ("users: {colour: blue}", &[], "users"),
        (
            "mailer: {smtp: {host: x, port: 25, tls: sometimes}}",
            &[],
            "mailer.smtp.tls",
        ),
        (
            "mailer: {database: 'postgres://x/y', cluster: {redis_url: 'http://x'}}",
            &[],
            "mailer.cluster.redis_url",
        ),
        (
            "mailer: {cluster: {redis_url: 'redis://127.0.0.1:6379'}}",
            &[],
            "mailer.database",
        ),
        (
            "mailer: {dkim: {domain: '', selector: s1, private_key_file: k.pem}}",
            &[],
            "mailer.dkim.domain",
        ),
        (
            "mailer: {dkim: {domain: 'example.com; x=y', selector: s1, private_key_file: k.pem}}",
            &[],
            "mailer.dkim.domain",
        ),
        (
            "mailer: {dkim: {domain: example.com, selector: '', private_key_file: k.pem}}",
            &[],
            "mailer.dkim.selector",
        ),
        (
            "mailer: {dkim: {domain: example.com, selector: '-s1', private_key_file: k.pem}}",
            &[],
            "mailer.dkim.selector",
        ),
        (
            "mailer: {dkim: {domain: example.com, selector: s1, private_key_file: ''}}",
            &[],
            "mailer.dkim.private_key_file",
        ),
        (
            "mailer: {dkim: {domain: example.com, selector: s1}}",
            &[],
            "mailer.dkim",
        ),
        (
            "mailer: {bounces: {listen: '127.0.0.1:2526', domain: localhost}}",
            &[],
            "mailer.bounces.domain",
        ),
        (
            "mailer: {bounces: {listen: '127.0.0.1:8080', domain: bounces.example.com}}",
            &[],
            "mailer.bounces.listen",
        ),
        (
            "mailer: {bounces: {domain: bounces.example.com}}",
            &[],
            "mailer.bounces",
        ),
        (
            "mailer: {webhooks: {retry_delays: [5, 999999999]}}",
            &[],
            "mailer.webhooks.retry_delays",
        ),
        (
            "",
            &[("FACTEUR_MAILER__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "maybe")],
            "mailer.webhooks.allow_private_targets",
        ),
        (
            "",
            &[
                ("FACTEUR_MAILER__DATABASE", "sqlite::memory:"),
                ("FACTEUR_MAILER__CLUSTER__REDIS_URL", "redis://redis:6379"),
            ],
            "mailer.database",
        ),
    ];
    for (yaml, vars, key) in cases {
        let err = load(yaml, vars).expect_err(yaml);
        assert!(
            err.key.starts_with(key),
            "{yaml} {vars:?}: got key {:?} ({err})",
            err.key
        );
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains(key), "{line}");
    }
}

#[test]
fn an_environment_error_names_the_variable() {
    let err = load("", &[("FACTEUR_MAILER__MAX_ATTEMPTS", "many")]).unwrap_err();
    assert_eq!(err.key, "mailer.max_attempts");
    assert!(
        err.message.contains("FACTEUR_MAILER__MAX_ATTEMPTS"),
        "{err}"
    );
}

#[test]
fn a_named_file_that_is_missing_is_an_error() {
    let err = Config::load(Some(Path::new("/nonexistent/facteur.yaml"))).unwrap_err();
    assert_eq!(err.key, "config");
    assert!(err.message.contains("/nonexistent/facteur.yaml"));
}

#[test]
fn a_malformed_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "transport: [unclosed").unwrap();
    let err = Config::load(Some(&path)).unwrap_err();
    assert!(err.to_string().contains("bad.yaml"), "{err}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let config = load(
        "users: {admin_token: sup3r-s3cret}\nmailer: {smtp: {host: h, port: 25, password: hunter2hunter2}}",
        &[],
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("sup3r-s3cret"));
    assert!(!debug.contains("hunter2hunter2"));
    assert!(!debug.contains("guest:guest"));
    assert!(debug.contains("[redacted]"));
}

#[test]
fn sqlite_urls_name_their_folder() {
    assert_eq!(
        sqlite_folder("sqlite://var/users.db?mode=rwc"),
        Some(PathBuf::from("var"))
    );
    assert_eq!(
        sqlite_folder("sqlite:///tmp/x/m.db"),
        Some(PathBuf::from("/tmp/x"))
    );
    assert_eq!(sqlite_folder("sqlite://users.db"), None);
    assert_eq!(sqlite_folder("sqlite::memory:"), None);
    assert_eq!(sqlite_folder("postgres://localhost/x"), None);
    assert_eq!(
        sqlite_file("sqlite://var/mailer.db?mode=rwc"),
        Some(PathBuf::from("var/mailer.db"))
    );
    assert_eq!(sqlite_file("sqlite::memory:"), None);
    assert_eq!(
        sqlite_file("sqlite://shared?mode=memory&cache=shared"),
        None
    );
    assert_eq!(sqlite_file("postgres://localhost/x"), None);
}

#[test]
fn only_sqlite_urls_are_sqlite() {
    assert!(is_sqlite("sqlite://var/users.db?mode=rwc"));
    assert!(is_sqlite("sqlite::memory:"));
    assert!(is_sqlite("sqlite:users.db"));
    assert!(!is_sqlite("postgres://localhost/x"));
    assert!(!is_sqlite("postgresql://localhost/sqlite"));
    assert!(!is_sqlite("sqlite3://x.db"));
}

#[test]
fn the_safety_keys_have_the_contract_defaults_and_are_checked() {
    let yaml = include_str!("../../../config.yaml");
    let config = load(yaml, &[]).unwrap();
    assert_eq!(config.users.max_pending_hashes, 64);
    assert_eq!(config.users.max_connections, 1024);
    assert!(config.users.trusted_proxies.is_empty());
    assert_eq!(config.users.max_connections_per_client, 64);
    assert_eq!(config.users.limits, UsersLimits::default());
    assert_eq!(config.users.limits.login_failures_per_login, 10);
    assert_eq!(config.users.limits.verification_mails_per_address, 3);
    assert_eq!(config.users.limits.verifications_per_client, 20);
    assert_eq!(
        config.users.verify_url,
        "http://127.0.0.1:3000/email-verifications/{token}"
    );
    assert_eq!(config.users.verification_ttl_hours, 48);
    assert!(!config.users.require_verified_email);
    assert_eq!(config.mailer.max_connections, 1024);
    assert_eq!(config.mailer.max_connections_per_client, 64);
    assert!(config.mailer.trusted_proxies.is_empty());
    assert_eq!(config.mailer.max_sockets, 10_000);
    assert_eq!(config.mailer.max_live_sockets, 2_000);
    assert!(config.mailer.allowed_origins.is_empty());
    assert!(config.mailer.live_token.is_none());
    let set = load(
        "mailer: {allowed_origins: ['https://ops.example.com', 'http://127.0.0.1:9000']}\nusers: {trusted_proxies: ['10.0.0.1', '::1']}",
        &[
            ("FACTEUR_USERS__LIMITS__CREATES_PER_CLIENT", "0"),
            ("FACTEUR_MAILER__LIVE_TOKEN", "0123"),
            ("FACTEUR_USERS__REQUIRE_VERIFIED_EMAIL", "true"),
            ("FACTEUR_USERS__LIMITS__VERIFICATIONS_PER_CLIENT", "0"),
        ],
    )
    .unwrap();
    assert_eq!(set.mailer.allowed_origins.len(), 2);
    assert_eq!(set.users.trusted_proxies.len(), 2);
    assert_eq!(set.users.limits.creates_per_client, 0);
    assert_eq!(set.users.limits.verifications_per_client, 0);
    assert!(set.users.require_verified_email);
    assert_eq!(set.mailer.live_token.unwrap().expose(), "0123");
    for bad in [
        "ops.example.com",
        "https://ops.example.com/path",
        "ftp://x.example",
    ] {
        let error = load(&format!("mailer: {{allowed_origins: ['{bad}']}}"), &[]).unwrap_err();
        assert_eq!(error.key, "mailer.allowed_origins.0", "{bad}");
    }
    let error = load("users: {max_connections: 0}", &[]).unwrap_err();
    assert_eq!(error.key, "users.max_connections");
    let error = load("users: {trusted_proxies: [nowhere]}", &[]).unwrap_err();
    assert!(error.key.starts_with("users.trusted_proxies"), "{error}");
}

#[test]
fn anonymous_live_viewers_are_a_part_of_the_sessions() {
    let set = load(
        "mailer: {max_sockets: 60}",
        &[("FACTEUR_MAILER__MAX_LIVE_SOCKETS", "50")],
    )
    .unwrap();
    assert_eq!(
        (set.mailer.max_sockets, set.mailer.max_live_sockets),
        (60, 50)
    );
    let all = load("mailer: {max_sockets: 60, max_live_sockets: 60}", &[]).unwrap();
    assert_eq!(all.mailer.max_live_sockets, 60);
    let error = load("mailer: {max_sockets: 60, max_live_sockets: 61}", &[]).unwrap_err();
    assert_eq!(error.key, "mailer.max_live_sockets");
    assert!(error.to_string().contains("max_sockets (60)"), "{error}");
    // The default pool (2,000) does not fit in fewer sessions: the key to change is named.
    let error = load("mailer: {max_sockets: 100}", &[]).unwrap_err();
    assert_eq!(error.key, "mailer.max_live_sockets");
}

#[test]
fn the_per_client_connection_cap_can_be_turned_off_and_the_mailer_trusts_listed_proxies() {
    let set = load(
        "mailer: {trusted_proxies: ['10.0.0.1', '::1'], max_connections_per_client: 0}",
        &[("FACTEUR_USERS__MAX_CONNECTIONS_PER_CLIENT", "8")],
    )
    .unwrap();
    assert_eq!(set.mailer.max_connections_per_client, 0);
    assert_eq!(set.mailer.trusted_proxies.len(), 2);
    assert_eq!(set.users.max_connections_per_client, 8);
    let error = load("mailer: {trusted_proxies: [nowhere]}", &[]).unwrap_err();
    assert!(error.key.starts_with("mailer.trusted_proxies"), "{error}");
    let error = load("mailer: {max_connections_per_client: -1}", &[]).unwrap_err();
    assert_eq!(error.key, "mailer.max_connections_per_client", "{error}");
}

#[test]
fn telemetry_is_off_by_default_and_its_endpoint_must_be_an_http_url() {
    let config = load("", &[]).unwrap();
    assert!(config.telemetry.otlp_endpoint.is_none());
    assert!(config.telemetry.traces_url().is_none());
    let set = load(
        "telemetry: {otlp_endpoint: null, service_name: null}",
        &[("FACTEUR_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4318")],
    )
    .unwrap();
    assert_eq!(
        set.telemetry.traces_url().as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    let full = load(
        "telemetry: {otlp_endpoint: 'https://otel.example/custom/traces', service_name: facteur-eu}",
        &[],
    )
    .unwrap();
    assert_eq!(
        full.telemetry.traces_url().as_deref(),
        Some("https://otel.example/custom/traces")
    );
    assert_eq!(full.telemetry.service_name.as_deref(), Some("facteur-eu"));
    for bad in ["127.0.0.1:4318", "grpc://collector:4317", "not a url"] {
        let error = load(&format!("telemetry: {{otlp_endpoint: '{bad}'}}"), &[]).unwrap_err();
        assert_eq!(error.key, "telemetry.otlp_endpoint", "{bad}");
    }
}

#[test]
fn trusted_trace_peers_are_addresses_or_ranges_from_the_file_or_a_variable() {
    assert!(
        load("{}", &[])
            .unwrap()
            .telemetry
            .trusted_trace_peers
            .is_empty()
    );
    let from_file = load(
        "telemetry: {trusted_trace_peers: ['10.0.0.0/8', '::1']}",
        &[],
    )
    .unwrap();
    let peers = &from_file.telemetry.trusted_trace_peers;
    assert!(any_contains(peers, "10.200.0.1".parse().unwrap()));
    assert!(any_contains(peers, "::1".parse().unwrap()));
    assert!(!any_contains(peers, "192.0.2.1".parse().unwrap()));
    let from_env = load(
        "",
        &[(
            "FACTEUR_TELEMETRY__TRUSTED_TRACE_PEERS",
            "[127.0.0.1, 10.0.0.0/8]",
        )],
    )
    .unwrap();
    assert_eq!(from_env.telemetry.trusted_trace_peers.len(), 2);
    let error = load("telemetry: {trusted_trace_peers: ['10.0.0.0/40']}", &[]).unwrap_err();
    assert!(
        error.key.starts_with("telemetry.trusted_trace_peers"),
        "{error}"
    );
}

#[test]
fn url_keys_with_a_space_or_no_scheme_are_refused_by_name_and_rediss_is_a_scheme() {
    let cases = [
        (
            "FACTEUR_USERS__DATABASE",
            "postgres://app:pw@db/my users",
            "users.database",
        ),
        (
            "FACTEUR_MAILER__DATABASE",
            "var/mailer.db",
            "mailer.database",
        ),
        (
            "FACTEUR_TRANSPORT__AMQP__URL",
            "amqp://guest:guest@rabbit /%2f",
            "transport.amqp.url",
        ),
        (
            "FACTEUR_TELEMETRY__OTLP_ENDPOINT",
            "collector:4318",
            "telemetry.otlp_endpoint",
        ),
        (
            "FACTEUR_TELEMETRY__OTLP_ENDPOINT",
            "http://otel:s3cret@collector:4318/v1 traces",
            "telemetry.otlp_endpoint",
        ),
        (
            "FACTEUR_TRANSPORT__SOCKETIO__URL",
            "http://mailer :8080",
            "transport.socketio.url",
        ),
    ];
    for (var, value, key) in cases {
        let error = load("", &[(var, value)]).unwrap_err();
        assert_eq!(error.key, key, "{var}={value}: {error}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(!error.to_string().contains(":pw@"), "{error}");
    }
    let error = load(
        "mailer: {database: 'postgres://x/y', cluster: {redis_url: 'rediss://redis example:6380'}}",
        &[],
    )
    .unwrap_err();
    assert_eq!(error.key, "mailer.cluster.redis_url");
    let tls = load(
        "mailer: {database: 'postgres://x/y', cluster: {redis_url: 'rediss://:pw@redis.example.com:6380/0'}}",
        &[],
    )
    .unwrap();
    assert_eq!(
        tls.mailer.cluster.unwrap().redis_url,
        "rediss://:pw@redis.example.com:6380/0"
    );
}

#[test]
fn the_templates_keys_have_their_defaults_and_a_bad_value_names_its_key() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.mailer.templates_dir, None);
    assert_eq!(config.mailer.default_locale, crate::Locale::FR);
    assert_eq!(config.mailer.brand, BrandConfig::default());
    assert_eq!(config.mailer.brand.name, "Facteur");
    let config = load(
        "mailer: {default_locale: de-ch, brand: {name: Comptoir, support_email: aide@comptoir.example}}",
        &[("FACTEUR_MAILER__TEMPLATES_DIR", "/")],
    )
    .unwrap();
    assert_eq!(config.mailer.default_locale.as_str(), "de-CH");
    assert_eq!(config.mailer.templates_dir, Some(PathBuf::from("/")));
    assert_eq!(config.mailer.brand.name, "Comptoir");
    for (yaml, key) in [
        (
            "mailer: {templates_dir: /nonexistent/templates}",
            "mailer.templates_dir",
        ),
        (
            "mailer: {default_locale: 'not a tag'}",
            "mailer.default_locale",
        ),
        ("mailer: {brand: {name: ' '}}", "mailer.brand.name"),
        (
            "mailer: {brand: {support_email: nope}}",
            "mailer.brand.support_email",
        ),
        ("mailer: {brand: {url: 'ftp://x'}}", "mailer.brand.url"),
        (
            "mailer: {brand: {logo_url: 'logo.png'}}",
            "mailer.brand.logo_url",
        ),
        ("mailer: {brand: {colour: red}}", "mailer.brand.colour"),
    ] {
        let err = load(yaml, &[]).unwrap_err();
        assert!(err.to_string().contains(key), "{yaml}: {err}");
    }
}
