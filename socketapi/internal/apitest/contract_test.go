package apitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestContractCatches: the contract check fails what breaks the document,
// and passes what keeps it.
func TestContractCatches(t *testing.T) {
	const instance = `{"userId":"a","containerName":"zaki-user-a","image":"i","state":"running","port":1,"url":"u","createdAtMs":1,"lastUsedAtMs":1,"configHash":"h","stale":false}`
	cases := []struct {
		name, method, path, body string
		headers                  map[string]string
		status                   int
		respBody                 string
		fail                     string // "" = must pass
	}{
		{"valid instance", "GET", "/v1/instances/a", "", nil, 200, instance, ""},
		{"valid error", "GET", "/v1/instances/a", "", nil, 404, `{"error":{"code":"not_found","message":"no"}}`, ""},
		{"missing field", "GET", "/v1/instances/a", "", nil, 200, `{"userId":"a"}`, "response 200 invalid"},
		{"extra field", "GET", "/v1/instances/a", "", nil, 200, strings.TrimSuffix(instance, "}") + `,"secret":"x"}`, "response 200 invalid"},
		{"undocumented status", "GET", "/v1/instances/a", "", nil, 418, `{"error":{"code":"internal","message":"x"}}`, "status is not supported"},
		{"code of another status", "GET", "/v1/instances/a", "", nil, 404, `{"error":{"code":"conflict","message":"x"}}`, `"conflict" answered with 404`},
		{"error without message", "GET", "/v1/instances/a", "", nil, 404, `{"error":{"code":"not_found","message":""}}`, "without a message"},
		{"unknown path not 404", "GET", "/v2/x", "", nil, 200, `{}`, "status 200, want 404"},
		{"405 without Allow", "PATCH", "/v1/instances/a", "", nil, 405, `{"error":{"code":"method_not_allowed","message":"x"}}`, "without an Allow header"},
		{"invalid request answered 2xx", "GET", "/v1/instances?state=sleeping", "", nil, 200, `[]`, "request invalid by the document"},
		{"bad id answered 2xx", "GET", "/v1/instances/-x", "", nil, 200, instance, "request invalid by the document"},
		{"bad event line", "GET", "/v1/events", "", nil, 200, "{\"type\":\"instance.started\",\"timeMs\":1}\n{\"type\":\"bogus\",\"timeMs\":1}\n", "NDJSON line"},
		{"good event lines", "GET", "/v1/events", "", nil, 200, "{\"type\":\"instance.started\",\"timeMs\":1}\n", ""},
		{"text error body", "GET", "/v1/health", "", nil, 500, "oops", "Content-Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newContract()
			assert.NilError(t, err)
			h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				ct := "application/json"
				switch {
				case strings.HasPrefix(tc.path, "/v1/events"):
					ct = "application/x-ndjson"
				case tc.respBody == "oops":
					ct = "text/plain"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.respBody)
			}))
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			h.ServeHTTP(httptest.NewRecorder(), req)
			assert.Check(t, is.Equal(c.Checked(), 1))
			f := c.Failures()
			if tc.fail == "" {
				assert.Check(t, is.Len(f, 0), "%v", f)
				return
			}
			assert.Assert(t, len(f) > 0, "no failure, want %q", tc.fail)
			assert.Check(t, is.Contains(strings.Join(f, "\n"), tc.fail))
		})
	}
}
