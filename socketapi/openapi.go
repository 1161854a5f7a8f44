package socketapi

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the API, served at GET
// /v1/openapi.json. A contract test checks every response of the test
// suite against it.
//
//go:embed openapi.json
var OpenAPI []byte
