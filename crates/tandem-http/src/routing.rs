//! The table of routes: each route is declared once, with its method, its path and an
//! example of a request it accepts, and both the router and the tests that walk every route
//! (the bad-input battery `tests/it/hostile/`, the role table `tests/it/role_table.rs`) are
//! built from that one list, so no route can be left out of them.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;

use crate::AppState;

/// One route of the API, as the table declares it.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// The method.
    pub method: Method,
    /// The path template, axum's syntax (`/api/users/{id}`).
    pub path: &'static str,
    /// Whether the route answers without authentication.
    pub public: bool,
    /// An example query string the route reads (`perpage=10&query=a`), `""` for none.
    pub query: &'static str,
    /// An example JSON body the route accepts; `None` for a route that reads none.
    pub body: Option<&'static str>,
}

/// A router under construction and the table of what it routes.
pub(crate) struct Routes {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl Routes {
    /// No routes yet.
    pub(crate) fn new() -> Routes {
        Routes {
            router: Router::new(),
            specs: Vec::new(),
        }
    }

    /// `GET path` by `handler`.
    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Routes {
        self.add(Method::GET, path, axum::routing::get(handler))
    }

    /// `POST path` by `handler`.
    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Routes {
        self.add(Method::POST, path, axum::routing::post(handler))
    }

    /// `PUT path` by `handler`.
    pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Routes {
        self.add(Method::PUT, path, axum::routing::put(handler))
    }

    /// `PATCH path` by `handler`.
    pub(crate) fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Routes {
        self.add(Method::PATCH, path, axum::routing::patch(handler))
    }

    /// `DELETE path` by `handler`.
    pub(crate) fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Routes {
        self.add(Method::DELETE, path, axum::routing::delete(handler))
    }

    /// The route added last reads this query string (an example of it).
    pub(crate) fn query(mut self, example: &'static str) -> Routes {
        if let Some(spec) = self.specs.last_mut() {
            spec.query = example;
        }
        self
    }

    /// The route added last reads a JSON body like this one.
    pub(crate) fn body(mut self, example: &'static str) -> Routes {
        if let Some(spec) = self.specs.last_mut() {
            spec.body = Some(example);
        }
        self
    }

    /// These routes and `other`'s.
    pub(crate) fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.specs.extend(other.specs);
        self
    }

    /// Marks every route so far as answering without authentication.
    pub(crate) fn public(mut self) -> Routes {
        for spec in &mut self.specs {
            spec.public = true;
        }
        self
    }

    /// The router and its table.
    pub(crate) fn into_parts(self) -> (Router<AppState>, Vec<RouteSpec>) {
        (self.router, self.specs)
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Routes {
        // axum merges the method routers of one path added twice.
        self.router = self.router.route(path, route);
        self.specs.push(RouteSpec {
            method,
            path,
            public: false,
            query: "",
            body: None,
        });
        self
    }
}
