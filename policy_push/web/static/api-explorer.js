// Starts Swagger UI on /redoc over this service's own OpenAPI document. A file of its own, not an inline
// script: the pages' Content-Security-Policy allows scripts from this origin only.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // no validator badge: it would send the document to a third-party host
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
