use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tandem_alerting::{
    AlertProvisioner, AlertRules, AlertStore, AlertingMetrics, Evaluated, Scheduler, SchedulerDeps,
    SqlAlertStore,
};
use tandem_dashboards::{
    DashboardEvent, DashboardEvents, DashboardStore, Dashboards, Provisioner, SqlDashboardStore,
};
use tandem_datasources::{
    DataSourceProvisioner, DataSourceService, DataSourceStore, SqlDataSourceStore,
};
use tandem_live::{Hub, HubOptions};
use tandem_sessions::{Identity, SessionStore, SqlSessionStore};
use tandem_storage::{
    Cache, ClusterJobs, Database, Heartbeat, Instance, JobsHandle, Membership, MigrationOptions,
    SqlCache, SqlLeases, SqlMembership, SqlServerLock,
};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::live::{DashboardAuthorizer, LiveCollector, forward_dashboard_events};
use crate::shared::alerting::DashboardFolders;
use crate::{AppState, AppStateParts, BuildInfo, Error, Metrics, Result, Settings};

/// How often expired cache entries are deleted (once per cluster).
const CACHE_CLEANUP_INTERVAL: Duration = Duration::from_secs(600);
/// How often expired sessions and old failed logins are deleted (once per cluster).
const SESSION_CLEANUP_INTERVAL: Duration = Duration::from_secs(600);
/// How often rows of long-dead instances are purged from the membership table.
const MEMBER_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// A member silent for this long is forgotten.
const MEMBER_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often dashboard versions beyond `versions_to_keep` are deleted (once per cluster).
const VERSION_RETENTION_INTERVAL: Duration = Duration::from_secs(600);
/// How often one instance of the cluster deletes expired snapshots.
const SNAPSHOT_CLEANUP_INTERVAL: Duration = Duration::from_secs(600);
/// How often the cluster job deletes finished notifications older than the retention.
const NOTIFICATION_LOG_PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// How many dashboard changes a slow subscriber may fall behind before it loses the
/// oldest (it sees `RecvError::Lagged`); saves never wait for subscribers.
const DASHBOARD_EVENTS_CAPACITY: usize = 1024;
/// How many evaluations a slow subscriber of `RunningServer::alerting_evaluations` may
/// fall behind before it loses the oldest; evaluations never wait for subscribers.
const ALERTING_EVENTS_CAPACITY: usize = 4096;
/// How often the alerting provisioning files are applied again.
const ALERTING_PROVISIONING_INTERVAL: Duration = Duration::from_secs(30);
/// How long a graceful shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The composition of one Tandem instance: database, migrations, cluster membership,
/// cluster jobs and the HTTP server.
///
/// `tandem-server` is a thin wrapper around [`Server::start`]; an embedder or a test can
/// start several instances in one process the same way.
pub struct Server;

impl Server {
    /// Connects to the database, applies pending migrations (waiting for another instance
    /// that is applying them), joins the cluster, and starts serving.
    pub async fn start(settings: Settings) -> Result<RunningServer> {
        let started_at = OffsetDateTime::now_utc();
        let db = Database::connect(&settings.database).await?;
        tracing::info!(
            backend = settings.database.backend.grafana_name(),
            "connected to the database"
        );
        db.migrate(MigrationOptions {
            locking: settings.database.migration_locking,
            lock_timeout: settings.database.migration_lock_timeout,
        })
        .await?;

        // Empty means every interface, as in Grafana; a host name or an IPv6 literal works too.
        let host = match settings.server.http_addr.as_str() {
            "" => "0.0.0.0",
            host => host.trim_start_matches('[').trim_end_matches(']'),
        };
        let port = settings.server.http_port;
        let listener = TcpListener::bind((host, port))
            .await
            .map_err(|source| Error::Bind {
                addr: format!("{host}:{port}"),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(Error::Listener)?;

        let instance_id = settings
            .cluster
            .instance_id
            .clone()
            .unwrap_or_else(generate_instance_id);
        let address = settings
            .cluster
            .advertise_address
            .clone()
            .unwrap_or_else(|| advertised(local_addr).to_string());
        let build = BuildInfo::current();
        let instance = Instance {
            id: instance_id.clone(),
            address,
            version: build.version.to_owned(),
            started_at,
        };
        let membership: Arc<dyn Membership> = Arc::new(SqlMembership::new(db.clone()));
        let heartbeat = Heartbeat::start(
            membership.clone(),
            instance,
            settings.cluster.heartbeat_interval,
        )
        .await?;

        let store: Arc<dyn SessionStore> = Arc::new(SqlSessionStore::new(db.clone()));
        let identity = Identity::new(store, settings.identity.clone());
        identity.ensure_admin().await?;

        let (dashboard_events, _) = broadcast::channel(DASHBOARD_EVENTS_CAPACITY);
        let dashboard_store: Arc<dyn DashboardStore> = Arc::new(SqlDashboardStore::new(db.clone()));
        let permissions = tandem_dashboards::Permissions::new(
            Arc::new(SqlDashboardStore::new(db.clone())),
            dashboard_store.clone(),
        );
        let dashboards = Dashboards::new(
            dashboard_store,
            Arc::new(dashboard_events.clone()) as Arc<dyn DashboardEvents>,
            settings.dashboards.clone(),
        );

        let mut jobs = ClusterJobs::new(Arc::new(SqlServerLock::new(db.clone())));
        let cleaner = identity.clone();
        jobs.add("sessions.cleanup", SESSION_CLEANUP_INTERVAL, move || {
            let cleaner = cleaner.clone();
            async move {
                cleaner.cleanup().await.map_err(|err| match err {
                    tandem_sessions::Error::Storage(err) => err,
                    other => tandem_storage::Error::InvalidArgument(other.to_string()),
                })
            }
        });
        let cache = SqlCache::new(db.clone());
        jobs.add("cache.cleanup", CACHE_CLEANUP_INTERVAL, move || {
            let cache = cache.clone();
            async move { cache.delete_expired().await }
        });
        let members = membership.clone();
        jobs.add("cluster.purge", MEMBER_PURGE_INTERVAL, move || {
            let members = members.clone();
            async move { members.purge(MEMBER_RETENTION).await }
        });
        let snapshots = SqlDashboardStore::new(db.clone());
        jobs.add("snapshots.cleanup", SNAPSHOT_CLEANUP_INTERVAL, move || {
            let snapshots = snapshots.clone();
            async move {
                tandem_dashboards::SnapshotStore::delete_expired(&snapshots)
                    .await
                    .map_err(tandem_dashboards::Error::into_job_error)
            }
        });
        let retention = dashboards.clone();
        jobs.add(
            "dashboards.retention",
            VERSION_RETENTION_INTERVAL,
            move || {
                let retention = retention.clone();
                async move { retention.run_retention().await }
            },
        );
        let log =
            tandem_alerting::SqlNotificationStore::new(db.clone(), &settings.identity.secret_key);
        let retention_ms =
            i64::try_from(settings.notifications.log_retention.as_millis()).unwrap_or(i64::MAX);
        jobs.add(
            "notifications.log_retention",
            NOTIFICATION_LOG_PURGE_INTERVAL,
            move || {
                let log = log.clone();
                async move {
                    use tandem_alerting::notify::store::NotificationStore;
                    let to_storage = |err| match err {
                        tandem_alerting::Error::Storage(err) => err,
                        other => tandem_storage::Error::InvalidArgument(other.to_string()),
                    };
                    // Expired silences go after the same retention (Alertmanager's
                    // default for both is 120 hours), and so do posted alerts that
                    // resolved that long ago.
                    let entries = log.purge_log(retention_ms).await.map_err(to_storage)?;
                    let silences = log.purge_silences(retention_ms).await.map_err(to_storage)?;
                    let posted = log
                        .purge_external_alerts(retention_ms)
                        .await
                        .map_err(to_storage)?;
                    Ok(entries.saturating_add(silences).saturating_add(posted))
                }
            },
        );
        let datasource_store: Arc<dyn DataSourceStore> = Arc::new(SqlDataSourceStore::new(
            db.clone(),
            &settings.identity.secret_key,
        ));
        let datasources =
            DataSourceService::new(datasource_store.clone(), settings.datasources.clone());
        // Every instance applies the files at start; the store makes that idempotent.
        let report = DataSourceProvisioner::new(datasource_store)
            .apply(&settings.datasource_provisioning)
            .await
            .map_err(Error::DataSources)?;
        if report.created + report.updated + report.deleted + report.failed > 0 {
            tracing::info!(
                created = report.created,
                updated = report.updated,
                unchanged = report.unchanged,
                deleted = report.deleted,
                failed = report.failed,
                "provisioned data sources"
            );
        }
        let live = Arc::new(
            Hub::start(HubOptions {
                settings: settings.live.clone(),
                node_id: instance_id.clone(),
                authorizer: Arc::new(DashboardAuthorizer {
                    dashboards: dashboards.clone(),
                    permissions: permissions.clone(),
                    identity: identity.clone(),
                }),
                leases: Some(Arc::new(SqlLeases::new(db.clone()))),
                database: Some(db.clone()),
                local_broker: None,
            })
            .await
            .map_err(Error::Live)?,
        );
        let jobs = jobs.start();
        let shutdown = CancellationToken::new();
        let provisioning = start_provisioning(&settings, &dashboards, shutdown.clone()).await;
        let metrics = Arc::new(Metrics::new(build.version, build.commit).map_err(Error::Metrics)?);
        let alerting = start_alerting(
            &settings,
            &db,
            &dashboards,
            &membership,
            &instance_id,
            &metrics,
            shutdown.clone(),
        )
        .await?;

        let state = AppState::new(AppStateParts {
            db: db.clone(),
            membership,
            instance_id: Arc::from(instance_id.as_str()),
            peer_timeout: settings.cluster.peer_timeout,
            metrics,
            build,
            root_url: Arc::from(settings.server.root_url.as_str()),
            max_body_bytes: settings.server.max_request_body_bytes,
            router_logging: settings.server.router_logging,
            allow_embedding: settings.server.allow_embedding,
            identity,
            preferences: Arc::new(tandem_sessions::SqlPreferenceStore::new(db.clone())),
            auth: Arc::new(settings.auth.clone()),
            dashboards,
            annotations: Arc::new(SqlDashboardStore::new(db.clone())),
            snapshots: Arc::new(SqlDashboardStore::new(db.clone())),
            library: Arc::new(SqlDashboardStore::new(db.clone())),
            permissions,
            datasources,
            live: live.clone(),
            alerting: alerting.rules,
            notifications: alerting.notifications,
            dispatch_wake: alerting
                .dispatcher
                .as_ref()
                .map_or_else(Default::default, tandem_alerting::Dispatcher::waker),
            smtp: Arc::new(settings.notifications.smtp.clone()),
            effective_config: Arc::new(settings.effective_config.clone()),
        });
        state
            .metrics
            .registry()
            .register(Box::new(
                LiveCollector::new(live.clone()).map_err(Error::Metrics)?,
            ))
            .map_err(Error::Metrics)?;
        let live_events = tokio::spawn(forward_dashboard_events(
            live.clone(),
            dashboard_events.subscribe(),
            shutdown.clone(),
        ));
        let router = crate::router(state);
        let serving = tokio::spawn(crate::serve(
            listener,
            router,
            settings.server.max_connections,
            shutdown.clone(),
            DRAIN_TIMEOUT,
        ));
        tracing::info!(address = %local_addr, instance_id = %instance_id, "HTTP server listening");
        Ok(RunningServer {
            local_addr,
            instance_id,
            shutdown,
            serving: Some(serving),
            heartbeat: Some(heartbeat),
            jobs: Some(jobs),
            provisioning,
            dashboard_events,
            live,
            live_events: Some(live_events),
            alerting_scheduler: alerting.scheduler,
            dispatcher: alerting.dispatcher,
            alerting_provisioning: alerting.provisioning,
            alerting_events: alerting.events,
            db,
        })
    }
}

/// A started instance; stop it with [`RunningServer::shutdown`]. Dropping it stops the
/// HTTP server and the background tasks without the graceful steps.
pub struct RunningServer {
    local_addr: SocketAddr,
    instance_id: String,
    shutdown: CancellationToken,
    serving: Option<JoinHandle<std::io::Result<()>>>,
    heartbeat: Option<Heartbeat>,
    jobs: Option<JobsHandle>,
    provisioning: Option<JoinHandle<()>>,
    dashboard_events: broadcast::Sender<DashboardEvent>,
    live: Arc<Hub>,
    live_events: Option<JoinHandle<()>>,
    alerting_scheduler: Option<Scheduler>,
    dispatcher: Option<tandem_alerting::Dispatcher>,
    alerting_provisioning: Option<JoinHandle<()>>,
    alerting_events: broadcast::Sender<Evaluated>,
    db: Database,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This instance's cluster id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The instance's database pool.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The instance's Live hub.
    pub fn live(&self) -> &Arc<Hub> {
        &self.live
    }

    /// Every dashboard change this instance commits from now on (saves, deletions,
    /// provisioning), once each: the composition layer turns them into Live messages.
    pub fn dashboard_events(&self) -> broadcast::Receiver<DashboardEvent> {
        self.dashboard_events.subscribe()
    }

    /// Every alert rule evaluation this instance runs from now on, once each (tests and
    /// embedders watch which instance evaluated which slot).
    pub fn alerting_evaluations(&self) -> broadcast::Receiver<Evaluated> {
        self.alerting_events.subscribe()
    }

    /// Resolves only if the HTTP server stops on its own (its listener failed), with the
    /// reason; a supervisor selects on it next to its shutdown signal.
    pub async fn failed(&mut self) -> Error {
        let Some(serving) = self.serving.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = serving.await;
        self.serving = None;
        match outcome {
            Ok(Ok(())) => Error::Listener(std::io::Error::other("the HTTP server stopped")),
            Ok(Err(err)) => Error::Listener(err),
            Err(join) => Error::Listener(std::io::Error::other(join.to_string())),
        }
    }

    /// Shuts the instance down gracefully: leaves the cluster (peers stop counting it at
    /// once), stops accepting connections, lets in-flight requests finish (up to 30 s),
    /// stops the cluster jobs and closes the database pool.
    pub async fn shutdown(mut self) -> Result<()> {
        tracing::info!("shutting down");
        // The scheduler releases its shards, so peers take its rules over at once.
        if let Some(scheduler) = self.alerting_scheduler.take() {
            scheduler.stop().await;
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.stop().await;
        }
        let left = match self.heartbeat.take() {
            Some(heartbeat) => heartbeat.leave().await,
            None => Ok(()),
        };
        // WebSocket clients are told to reconnect elsewhere (3001) before HTTP drains, and
        // the producer leases are released for another instance to take.
        self.live.shutdown().await;
        self.shutdown.cancel();
        if let Some(forwarding) = self.live_events.take() {
            let _ = forwarding.await;
        }
        let served = match self.serving.take() {
            Some(serving) => serving.await,
            None => Ok(Ok(())),
        };
        if let Some(jobs) = self.jobs.take() {
            jobs.stop().await;
        }
        if let Some(provisioning) = self.provisioning.take() {
            let _ = provisioning.await;
        }
        if let Some(provisioning) = self.alerting_provisioning.take() {
            let _ = provisioning.await;
        }
        self.db.close().await;
        match served {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(Error::Listener(err)),
            Err(join) => tracing::error!(error = %join, "the HTTP server task failed"),
        }
        left?;
        tracing::info!("shut down cleanly");
        Ok(())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Provisions the configured dashboard providers once, so that their dashboards exist
/// when the server starts answering, then again every update interval until `shutdown`.
/// Every instance runs the providers; the store makes the runs idempotent across them.
async fn start_provisioning(
    settings: &Settings,
    dashboards: &Dashboards,
    shutdown: CancellationToken,
) -> Option<JoinHandle<()>> {
    if settings.provisioning.providers.is_empty() {
        return None;
    }
    let interval = settings.provisioning.update_interval();
    let provisioner = Provisioner::new(dashboards.clone(), settings.provisioning.providers.clone());
    provisioner.run_logged().await;
    Some(tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(interval) => provisioner.run(interval, shutdown).await,
        }
    }))
}

/// Alerting as one instance runs it.
struct AlertingParts {
    rules: AlertRules,
    scheduler: Option<Scheduler>,
    dispatcher: Option<tandem_alerting::Dispatcher>,
    notifications: Arc<dyn tandem_alerting::notify::store::NotificationStore>,
    provisioning: Option<JoinHandle<()>>,
    events: broadcast::Sender<Evaluated>,
}

/// Builds the alert rules service, provisions the alerting files once (so their rules exist
/// when the server starts answering) and again every 30 s, and starts the scheduler when
/// `execute_alerts` is on.
async fn start_alerting(
    settings: &Settings,
    db: &Database,
    dashboards: &Dashboards,
    membership: &Arc<dyn Membership>,
    instance_id: &str,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<AlertingParts> {
    let store: Arc<dyn AlertStore> = Arc::new(SqlAlertStore::new(db.clone()));
    let folders = Arc::new(DashboardFolders(dashboards.clone()));
    let datasource_store: Arc<dyn tandem_datasources::DataSourceStore> = Arc::new(
        tandem_datasources::SqlDataSourceStore::new(db.clone(), &settings.identity.secret_key),
    );
    let queries = Arc::new(tandem_datasources::DataSourceService::new(
        datasource_store.clone(),
        tandem_datasources::DataSourceSettings::default(),
    ));
    let rules = AlertRules::new(
        store.clone(),
        folders.clone(),
        datasource_store,
        settings.alerting.clone(),
    );
    let notifications: Arc<dyn tandem_alerting::notify::store::NotificationStore> = Arc::new(
        tandem_alerting::SqlNotificationStore::new(db.clone(), &settings.identity.secret_key),
    );
    let provisioner = AlertProvisioner::new(rules.clone(), settings.alerting_provisioning.clone())
        .with_notifications(notifications.clone());
    let provisioning = if provisioner.is_empty() {
        None
    } else {
        let report = provisioner.run_once().await;
        tracing::info!(?report, "provisioned alerting");
        let cancel = shutdown.clone();
        Some(tokio::spawn(async move {
            provisioner
                .run(ALERTING_PROVISIONING_INTERVAL, cancel)
                .await;
        }))
    };
    let (events, _) = broadcast::channel(ALERTING_EVENTS_CAPACITY);
    // Every instance dispatches, whether or not it evaluates: the claims make it once.
    let dispatcher = Some(tandem_alerting::Dispatcher::start(
        tandem_alerting::DispatcherDeps {
            alerts: store.clone(),
            store: notifications.clone(),
            instance_id: instance_id.to_owned(),
            settings: settings.notifications.clone(),
        },
    ));
    let scheduler = if settings.alerting.execute_alerts {
        Some(Scheduler::start(SchedulerDeps {
            store,
            queries,
            folders,
            membership: membership.clone(),
            instance_id: instance_id.to_owned(),
            peer_timeout: settings.cluster.peer_timeout,
            tick: settings.cluster.heartbeat_interval,
            metrics: AlertingMetrics::new(metrics.registry())?,
            settings: settings.alerting.clone(),
            events: Some(events.clone()),
        }))
    } else {
        None
    };
    Ok(AlertingParts {
        rules,
        scheduler,
        dispatcher,
        notifications,
        provisioning,
        events,
    })
}

/// The address to advertise when none is configured: the listening address, with an
/// unspecified IP (every interface) replaced by loopback.
fn advertised(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        ip if !ip.is_unspecified() => ip,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, local.port())
}

fn generate_instance_id() -> String {
    let bytes: [u8; 8] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
