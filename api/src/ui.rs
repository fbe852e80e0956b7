//! The analyst page at `/ui`: one self-contained HTML file compiled into the binary (no build
//! toolchain, no CDN), talking to the same /v1 routes as any client.

use actix_web::http::header::ContentType;
use actix_web::HttpResponse;

const PAGE: &str = include_str!("ui.html");

pub(crate) async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'",
        ))
        .body(PAGE)
}
