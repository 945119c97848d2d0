//! Building and running the mailer: [`App::build`] connects, migrates, binds and starts the
//! background tasks; [`App::run_until_stopped`] serves until the given future completes,
//! then shuts down gracefully.

use crate::amqp::{AmqpConsumer, TransportHealth};
use crate::bounces;
use crate::cluster::{Cluster, Io};
use crate::error::MailError;
use crate::events::{Events, LiveFeed, LiveRecipients};
use crate::http::{self, AppParts, AppState};
use crate::mailer_core::MailerCore;
use crate::metrics::Metrics;
use crate::retention::{Retention, RetentionOptions};
use crate::sending::{
    Deliveries, DeliveryContext, DeliveryOptions, DkimSigner, Letterhead, MailSender,
    SmtpSetupError,
};
use crate::socket;
use crate::store;
use crate::templates::live::LiveTemplates;
use crate::templates::{TemplateSource, Templates};
use crate::webhooks::Webhooks;
use axum::Router;
use domain::config::{Config, TransportKind};
use lettre::message::Mailbox;
use runtime::http_server::ServeLimits;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use transport::amqp::AmqpEvents;

/// Why the mailer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("the mailer database could not be opened or migrated: {0}")]
    Database(#[from] MailError),
    /// `mailer.suppression_key` is not the key the suppression list is kept under: a
    /// configuration error (exit 2) naming the key.
    #[error("{0}")]
    SuppressionKey(String),
    /// The listen address could not be bound.
    #[error("the mailer could not listen on {addr}: {source}")]
    Bind {
        /// The address from `mailer.listen`.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The SMTP settings cannot be used.
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
    /// `mailer.cluster.redis_url` cannot be read by the Redis client.
    #[error("{0}")]
    Cluster(String),
    /// The templates (built-in, and `mailer.templates_dir` over them) do not pass their
    /// check: a configuration error (exit 2) naming the file and line.
    #[error("invalid templates: {0}")]
    Templates(#[from] crate::templates::LoadError),
    /// `mailer.from` is not a mailbox a message can carry: a configuration error (exit 2).
    #[error("mailer.from: {value:?} cannot be used as the sender of a mail: {reason}")]
    From {
        /// The configured value.
        value: String,
        /// Why.
        reason: String,
    },
    /// `mailer.dkim.private_key_file` cannot be read or holds no usable key: a configuration
    /// error (exit 2), one line naming the key.
    #[error("{0}")]
    Dkim(domain::config::ConfigError),
}

impl StartupError {
    /// True when the configuration is wrong as written (exit 2), as opposed to something
    /// outside that failed (a database that does not answer, a port taken: exit 1).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            StartupError::Templates(_)
                | StartupError::From { .. }
                | StartupError::Cluster(_)
                | StartupError::Dkim(_)
                | StartupError::SuppressionKey(_)
        )
    }
}

/// Why the mailer stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP server failed.
    #[error("the mailer's HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Tuning that tests and benchmarks change; production uses the defaults.
#[derive(Debug, Clone)]
pub struct MailerOptions {
    /// Workers, retry waits and the send timeout.
    pub delivery: DeliveryOptions,
    /// How long shutdown waits for sends under way.
    pub shutdown_grace: Duration,
    /// How often old delivery records are deleted.
    pub retention: RetentionOptions,
}

impl Default for MailerOptions {
    fn default() -> Self {
        Self {
            delivery: DeliveryOptions::default(),
            shutdown_grace: Duration::from_secs(10),
            retention: RetentionOptions::default(),
        }
    }
}

/// A built mailer, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
    io: Io,
    deliveries: Deliveries,
    grace: Duration,
    /// With AMQP, the consumer feeding the core, stopped at shutdown.
    amqp: Option<AmqpConsumer>,
    /// The daily deletion of old records, stopped at shutdown.
    retention: tokio::task::JoinHandle<()>,
    /// The webhooks' delivery loop, stopped at shutdown.
    webhook_loop: tokio::task::JoinHandle<()>,
    /// With `mailer.bounces`, what stops the bounce receiver.
    bounces: Option<tokio::sync::oneshot::Sender<()>>,
    /// With `mailer.bounces`, the address the receiver listens on.
    bounce_addr: Option<SocketAddr>,
    limits: ServeLimits,
}

impl App {
    /// Connects `mailer.database`, runs migrations, builds the SMTP (or `.eml`) sender,
    /// mounts socket.io, binds `mailer.listen`, and, with AMQP, starts the consumer and the
    /// events publisher (both connect in the background and reconnect by themselves).
    pub async fn build(config: &Config) -> Result<App, StartupError> {
        Self::build_with(config, MailerOptions::default()).await
    }

    /// [`App::build`] with explicit tuning.
    pub async fn build_with(config: &Config, options: MailerOptions) -> Result<App, StartupError> {
        let mc = &config.mailer;
        // Checked before anything starts: lettre's mailbox syntax is stricter than the
        // address check of the configuration.
        let from: Mailbox = mc.from.parse().map_err(|e| StartupError::From {
            value: mc.from.clone(),
            reason: format!("{e}"),
        })?;
        // Read and parsed once here, never per mail.
        let dkim = mc
            .dkim
            .as_ref()
            .map(DkimSigner::load)
            .transpose()
            .map_err(StartupError::Dkim)?;
        let dkim_record = dkim.as_ref().map(|signer| signer.record().clone());
        let metrics = Arc::new(Metrics::new());
        // Loaded and checked first: a template defect is a configuration error, found before
        // anything connects. Compiled once per load, for the delivery loop and the template
        // routes alike.
        let template_source = TemplateSource::of(mc);
        let templates = LiveTemplates::new(
            Templates::load(&template_source)?,
            template_source,
            metrics.clone(),
        );
        templates.watch();
        // Mailers of a cluster share the list: one started with another key may not take an
        // empty list over while the others write under theirs.
        let store = store::connect(
            &mc.database,
            metrics.write_counters(),
            store::SuppressionKeys::new(&mc.suppression_key),
            mc.cluster.is_none(),
        )
        .await
        .map_err(|e| match e {
            store::ConnectError::Store(e) => StartupError::Database(e),
            e @ store::ConnectError::KeyMismatch { .. } => {
                StartupError::SuppressionKey(e.to_string())
            }
        })?;
        // Bound before any background work starts, so a taken port stops the start cleanly.
        let listener = TcpListener::bind(mc.listen)
            .await
            .map_err(|source| StartupError::Bind {
                addr: mc.listen,
                source,
            })?;
        let bounce_listener =
            match &mc.bounces {
                Some(b) => Some(TcpListener::bind(b.listen).await.map_err(|source| {
                    StartupError::Bind {
                        addr: b.listen,
                        source,
                    }
                })?),
                None => None,
            };
        let cluster = match &mc.cluster {
            Some(c) => Cluster::start(&c.redis_url).map_err(StartupError::Cluster)?,
            None => Cluster::off(),
        };
        let (layer, io) = socket::engine(&cluster);
        let on_amqp = config.transport.kind == TransportKind::Amqp;
        // With AMQP every `mail-status` also goes to the events exchange; the publisher
        // connects in the background, so a broker that is down does not stop the mailer.
        let status_exchange = on_amqp.then(|| AmqpEvents::start(&config.transport.amqp));
        let live = LiveFeed::start(
            io.clone(),
            LiveRecipients::of(mc),
            metrics.live_events_dropped.clone(),
            cluster.node(),
        );
        let live_viewers = live.viewers();
        let events = Events::new(io.clone(), status_exchange, live, cluster.is_on());
        let listeners = socket::SocketListeners {
            services: events.services(),
            live: live_viewers,
        };
        let sender = match &mc.smtp {
            Some(smtp) => {
                let pool_size = u32::try_from(options.delivery.workers).unwrap_or(16);
                MailSender::smtp(smtp, pool_size)?
            }
            None => MailSender::Files(mc.outbox_dir.clone()),
        };
        let sender_health = sender.health_label();
        let files = mc.smtp.is_none().then(|| mc.outbox_dir.clone());
        let retention = Retention::new(store.clone(), files, metrics.clone());
        let deliveries = Deliveries::start(
            DeliveryContext {
                templates: templates.clone(),
                store: store.clone(),
                sender,
                events: events.clone(),
                metrics: metrics.clone(),
                letterhead: Letterhead {
                    from,
                    domain: mc.from_domain().to_string(),
                    dkim,
                    bounce_domain: mc.bounces.as_ref().map(|b| b.domain.clone()),
                },
                max_attempts: mc.max_attempts,
                retention: retention.clone(),
            },
            options.delivery,
        )
        .await?;
        let records_age = Duration::from_secs(u64::from(mc.retention.records_days) * 24 * 60 * 60);
        let retention_job = retention.clone().start(records_age, options.retention);
        let webhooks = Webhooks::new(store.clone(), &mc.webhooks, metrics.clone());
        // Alone on its store, this mailer may take back what a stopped process held; in a
        // cluster, the others' holds end with their leases.
        let webhook_loop = webhooks.clone().start(mc.cluster.is_none());
        let bounce_addr = bounce_listener.as_ref().and_then(|l| l.local_addr().ok());
        let bounces = bounce_listener.map(|listener| {
            let (reports, inbound) = tokio::sync::mpsc::channel(64);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let domain = mc
                .bounces
                .as_ref()
                .map(|b| b.domain.clone())
                .unwrap_or_default();
            tokio::spawn(bounces::serve(
                listener,
                domain,
                bounces::IntakeLimits::default(),
                reports,
                async move {
                    let _ = stopped.await;
                },
            ));
            tokio::spawn(
                bounces::Intake {
                    store: store.clone(),
                    events: events.clone(),
                    metrics: metrics.clone(),
                }
                .run(inbound),
            );
            stop
        });
        let core = MailerCore::new(
            store,
            deliveries.clone(),
            events,
            metrics.clone(),
            retention,
            templates.clone(),
        );
        socket::mount(
            &io,
            config.transport.socketio.token.clone(),
            mc,
            core.clone(),
            listeners,
            cluster.node(),
        )
        .await;
        let amqp = on_amqp.then(|| AmqpConsumer::start(core.clone(), &config.transport.amqp));
        let state = AppState::new(AppParts {
            core,
            token: config.transport.socketio.token.clone(),
            metrics: metrics.clone(),
            sender_health,
            transport: amqp
                .as_ref()
                .map_or(TransportHealth::Socketio, AmqpConsumer::health),
            templates: templates.clone(),
            dkim: dkim_record,
            webhooks,
            cluster,
            asyncapi: http::asyncapi::AsyncApiDocument::with_templates(
                http::asyncapi::Facts::of(config, listener.local_addr().unwrap_or(mc.listen)),
                templates.clone(),
            ),
            openapi: http::openapi::OpenApiDocument::with_templates(templates.clone()),
        });
        let router = socket::protect(http::router(state).layer(layer), mc, metrics);
        Ok(App {
            listener,
            router,
            io,
            deliveries,
            grace: options.shutdown_grace,
            amqp,
            retention: retention_job,
            webhook_loop,
            bounces,
            bounce_addr,
            limits: ServeLimits::with_max_connections(mc.max_connections)
                .per_client(mc.max_connections_per_client, &mc.trusted_proxies),
        })
    }

    /// The address the mailer listens on (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address of the bounce receiver, with `mailer.bounces` (the real port when its
    /// `listen` had port 0).
    pub fn bounce_addr(&self) -> Option<SocketAddr> {
        self.bounce_addr
    }

    /// The delivery loop, whose [`Deliveries::drain`] waits until the pending work is done.
    pub fn deliveries(&self) -> Deliveries {
        self.deliveries.clone()
    }

    /// Closes keep-alive connections idle for `timeout` instead of the contract's 60 s
    /// (tests, which cannot wait that long).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// Serves until `shutdown` completes, then stops accepting, closes socket.io, stops the
    /// AMQP consumer (unacked messages go back to the queue) and lets sends under way finish
    /// for a short grace period; unfinished deliveries are picked up at the next start.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let io = self.io.clone();
        tracing::info!(addr = %self.local_addr(), "mailer listening");
        let result =
            runtime::http_server::serve(self.listener, self.router, self.limits, async move {
                shutdown.await;
                io.close().await;
            })
            .await;
        if let Some(consumer) = self.amqp {
            consumer.stop().await;
        }
        // A batch cut short is deleted by the next run.
        self.retention.abort();
        // An event under way when it stops is sent again once its hold ends.
        self.webhook_loop.abort();
        if let Some(stop) = self.bounces {
            let _ = stop.send(());
        }
        self.deliveries.stop(self.grace).await;
        tracing::info!("mailer stopped");
        result.map_err(RunError::from)
    }
}
