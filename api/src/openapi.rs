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
        routes::similar_items,
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
    modifiers(&Security, &QueryStrings, &Described, &Strict),
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
        let bearer = || {
            let also = "Or the same key in an `X-Api-Key` header.";
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(also)).build())
        };
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
                .description(
                    "invalid_query_string: a query parameter this route does not read, or a bad value of one; \
                     malformed_url: a path or query string that is not UTF-8 once its percent-escapes are decoded",
                )
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

/// The description of a response whose annotation gives none, by status: OpenAPI requires
/// one for every response, and strict validators and client generators refuse a document
/// without (a 200's is its operation's summary, [`Described`]).
fn default_description(status: &str) -> Option<&'static str> {
    Some(match status {
        "400" => {
            "malformed_json, unreadable_body or bad_request: the body is not JSON or cannot be read as sent; \
                  invalid_query_string: a query string on a route that reads none; malformed_url: a path or query \
                  string that is not UTF-8 once its percent-escapes are decoded"
        }
        "401" => "unauthorized: no key was sent (`Authorization: Bearer KEY` or `X-Api-Key: KEY`)",
        "403" => {
            "forbidden: the key sent is not one this route accepts; or the route is switched off on this server \
             (admin_disabled, writes_disabled: no admin or write key set); read_only_replica: a write sent to a \
             replica, which takes none"
        }
        "408" => {
            "request_timeout: the body did not arrive within the server's body_timeout_secs, plus a second per KiB received"
        }
        "404" => "item_not_found or user_not_found: the error names the id",
        "413" => "payload_too_large: the body is over the server's limit",
        "415" => {
            "unsupported_media_type: send Content-Type: application/json, in UTF-8 (gzip or deflate encoding allowed)"
        }
        "422" => "invalid_request or limit_exceeded: a value the API refuses, named with its field",
        "503" => "overloaded: the engine's queue is full; retry after the Retry-After header's seconds",
        _ => return None,
    })
}

/// Gives every response its description: the annotation's, else [`default_description`], and
/// for a success its operation's summary.
struct Described;

impl Modify for Described {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let summary = operation.summary.clone();
                for (status, response) in operation.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else { continue };
                    if !response.description.is_empty() {
                        continue;
                    }
                    let fallback = match status.as_str() {
                        "200" => summary.clone(),
                        other => default_description(other).map(str::to_string),
                    };
                    response.description = fallback.unwrap_or_else(|| format!("status {status}"));
                }
            }
        }
    }
}

/// What the derived schemas cannot say: each `fusion` variant takes no key but its own
/// (`Fusion` is read through a strict request type; the derive sees only the variants).
struct Strict;

impl Modify for Strict {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        use utoipa::openapi::RefOr;
        let Some(components) = openapi.components.as_mut() else { return };
        if let Some(RefOr::T(Schema::OneOf(fusion))) = components.schemas.get_mut("Fusion") {
            for variant in fusion.items.iter_mut() {
                if let RefOr::T(Schema::Object(object)) = variant {
                    object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
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
