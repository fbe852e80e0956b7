//! The OpenAPI document, generated from the handlers' annotations and the request and response
//! types' schemas. Served at `/openapi.json`, browsable at `/docs/`; `api/openapi.json` holds the
//! committed copy, which a test compares with this one so the two cannot drift.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ErrorBody, ErrorDetail};
use crate::{routes, writes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hyrank",
        description = "Hybrid retrieval and ranking: search, recommendations, similar items, and an explanation of every score. Keys, when the server has them, go in `Authorization: Bearer KEY` (or `X-Api-Key: KEY`)."
    ),
    paths(
        routes::search,
        routes::recommend,
        routes::item,
        routes::similar,
        routes::index,
        writes::events,
        writes::delete_item,
        writes::update_fields,
        writes::put_item,
        routes::reload,
        routes::healthz,
        routes::readyz,
        routes::metrics
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security, &QueryStrings),
    tags(
        (name = "search", description = "Query-driven retrieval with fusion and optional reranking"),
        (name = "recommend", description = "Recommendations for a user"),
        (name = "items", description = "Items and their neighbours"),
        (name = "index", description = "The serving generation"),
        (name = "events", description = "Live writes; need the write key or the admin key"),
        (name = "admin", description = "Needs the admin key"),
        (name = "operations", description = "Health, readiness and metrics; no key needed")
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("admin_key", bearer());
        components.add_security_scheme("write_key", bearer());
    }
}

/// Every /v1 route answers a query string it does not read with 400 `invalid_query_string`
/// (`middleware::no_query_string`), whatever its annotation lists.
struct QueryStrings;

impl Modify for QueryStrings {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let response = || {
            ResponseBuilder::new()
                .description("invalid_query_string: a query parameter this route does not read, or a bad value of one")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (_, item) in openapi.paths.paths.iter_mut().filter(|(path, _)| path.starts_with("/v1/")) {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if !responses.contains_key("400") {
                    responses.insert("400".to_string(), response().into());
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // The crate's version, not a build-time value, so the committed copy stays comparable.
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The document as pretty JSON with a final newline (the committed file's form).
pub fn json() -> String {
    document().to_pretty_json().expect("the OpenAPI document serializes") + "\n"
}

/// Swagger UI at `/docs/`, bundled in the binary (no CDN), reading `/openapi.json`.
pub(crate) fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", document())
}
