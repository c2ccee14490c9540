//! The pages a browser gets at the front door: a status page at `/` and Grafana's login
//! form at `GET /login`.
//!
//! Plain HTML with a little inline script, no build step and no external assets. Every
//! value the server writes into a page is HTML-escaped ([`escape`]); what the scripts add
//! later goes in with `textContent`, never as markup. Each answer carries a
//! `Content-Security-Policy` that lets only the page's own inline script and style run,
//! by a nonce drawn for that answer, and allows requests to this origin only.

mod login;
mod status;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::routing::Routes;

/// The routes of the pages; they answer without authentication (what a visitor who has not
/// signed in may see is each page's business).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/", status::page)
        .get("/login", login::page)
}

/// One page: its title, its body (markup already escaped), the script it runs, and the
/// sub-path of `root_url` its links and requests start with.
struct Page<'a> {
    title: &'a str,
    base: &'a str,
    body: &'a str,
    script: &'a str,
}

/// The style every page shares.
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1f2328}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}\
dl{display:grid;grid-template-columns:max-content auto;gap:.3rem 1.5rem}dt{font-weight:600}dd{margin:0}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #d0d7de}\
.ok{color:#1a7f37}.bad{color:#cf222e}.muted{color:#57606a}\
form{display:grid;gap:.5rem;max-width:22rem}input{padding:.4rem;font-size:1rem}\
button{padding:.5rem;font-size:1rem;cursor:pointer}";

impl Page<'_> {
    /// The page as a response: HTML, never cached, its script and style allowed by a
    /// nonce of this response only.
    fn render(&self) -> Response {
        let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 18]>());
        let html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style nonce=\"{nonce}\">{STYLE}</style>\n</head>\n\
             <body data-base=\"{base}\">\n{body}\n<script nonce=\"{nonce}\">\n{script}\n</script>\n\
             </body>\n</html>\n",
            title = escape(self.title),
            base = escape(self.base),
            body = self.body,
            script = self.script,
        );
        let policy = format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
             connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'"
        );
        let mut response = (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        response
    }
}

/// `text` made safe to place in HTML text and in quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain/path-1"), "plain/path-1");
    }
}
