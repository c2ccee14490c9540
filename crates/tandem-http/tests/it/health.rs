use std::time::Duration;

use tandem_http::testkit::http;
use tandem_http::testkit::{TcpProxy, TestCluster, eventually, test_settings};
use tandem_http::{Server, Settings};
use tandem_storage::testkit::{TestDatabase, with_database};
use tandem_storage::{Backend, DatabaseSettings, Location};

async fn health(url: &str) -> (u16, String) {
    let response = http::get(&format!("{url}/api/health")).await;
    (
        response.status,
        response.json()["database"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The test database's URL, with the server part replaced by the proxy's address.
fn through(settings: &DatabaseSettings, proxy: &TcpProxy) -> DatabaseSettings {
    let Location::Url(url) = &settings.location else {
        panic!("a server database")
    };
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let userinfo = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    let name = path.split('?').next().unwrap();
    let url = with_database(&format!("{scheme}://{userinfo}{}/x", proxy.addr()), name);
    let mut settings = DatabaseSettings::from_url(&url).unwrap();
    settings.acquire_timeout = Duration::from_secs(1);
    settings
}

// The database goes away under a running instance: /api/health turns 503 "failing", the
// process keeps serving, and health is "ok" again once the database is back.
async fn health_follows_the_database(backend: Backend) {
    let Some(test) = TestDatabase::create(backend).await else {
        return;
    };
    let Location::Url(url) = &test.settings().location else {
        unreachable!()
    };
    let target = url.split_once("://").unwrap().1;
    let target = target.rsplit_once('@').map_or(target, |(_, host)| host);
    let target = target.split('/').next().unwrap().to_owned();
    let proxy = TcpProxy::start(&target).await;
    let mut settings: Settings = test_settings(&test, 0);
    settings.database = through(&test.settings(), &proxy);
    let server = Server::start(settings)
        .await
        .expect("start through the proxy");
    let url = format!("http://{}", server.local_addr());
    assert_eq!(health(&url).await, (200, "ok".to_owned()));

    proxy.set_up(false);
    eventually("health reports the outage", Duration::from_secs(20), || {
        let url = url.clone();
        async move { health(&url).await == (503, "failing".to_owned()) }
    })
    .await;
    // Routes that need no database still answer while it is away.
    assert_eq!(http::get(&format!("{url}/metrics")).await.status, 200);

    proxy.set_up(true);
    eventually(
        "health recovers with the database",
        Duration::from_secs(20),
        || {
            let url = url.clone();
            async move { health(&url).await == (200, "ok".to_owned()) }
        },
    )
    .await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_reported_and_recovered() {
    health_follows_the_database(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_outage_is_reported_and_recovered() {
    health_follows_the_database(Backend::Mysql).await;
}

// SQLite cannot be cut off like a server; health still checks the file answers.
#[tokio::test]
async fn sqlite_health_is_ok() {
    let cluster = TestCluster::start(Backend::Sqlite, 1).await.unwrap();
    assert_eq!(health(&cluster.url(0)).await, (200, "ok".to_owned()));
    cluster.shutdown().await;
}
