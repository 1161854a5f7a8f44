package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// noBodyMax is how much of a body a call that takes none reads to tell
// an empty one (or "{}") from something else.
const noBodyMax = 64

// readBody reads the request body within BodyTimeout: up to MaxBodyBytes
// when the call takes a JSON body (413 past it), else only an empty body
// or "{}" is accepted.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, takesBody bool) ([]byte, error) {
	b, whole, err := s.readBodyBytes(w, r, takesBody)
	if err != nil && !whole {
		// What is left of the body is not read: the connection goes. A
		// body read whole but refused keeps it.
		w.Header().Set("Connection", "close")
	}
	return b, err
}

// readBodyBytes reads the body; whole tells whether all of it was read.
func (s *Server) readBodyBytes(w http.ResponseWriter, r *http.Request, takesBody bool) (_ []byte, whole bool, _ error) {
	limit := s.cfg.MaxBodyBytes
	if !takesBody {
		limit = noBodyMax
	}
	if takesBody && r.ContentLength > limit {
		return nil, false, socketapi.Errorf(socketapi.ErrTooLarge, "request body of %d bytes exceeds the limit of %d", r.ContentLength, limit)
	}
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		return nil, true, nil
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, false, bodyErr(r, err, takesBody, limit)
	}
	rc.SetReadDeadline(time.Time{})
	if !takesBody {
		if t := bytes.TrimSpace(b); len(t) != 0 && string(t) != "{}" {
			return nil, true, socketapi.Errorf(socketapi.ErrInvalidArgument, "%s %s takes no body", r.Method, r.URL.EscapedPath())
		}
		return nil, true, nil
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
			return nil, true, socketapi.Errorf(socketapi.ErrInvalidArgument, "a JSON body needs Content-Type: application/json (got %q)", r.Header.Get("Content-Type"))
		}
	}
	return b, true, nil
}

func bodyErr(r *http.Request, err error, takesBody bool, limit int64) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) && takesBody:
		return socketapi.Errorf(socketapi.ErrTooLarge, "request body exceeds the limit of %d bytes", limit)
	case errors.As(err, &tooLarge):
		return socketapi.Errorf(socketapi.ErrInvalidArgument, "%s %s takes no body", r.Method, r.URL.EscapedPath())
	}
	return socketapi.Errorf(socketapi.ErrInvalidArgument, "read request body: %v", err)
}

// decodeJSON decodes body, one JSON object, into v (a pointer to a
// struct) strictly: an empty body is the zero value; unknown or mis-cased
// keys, duplicate keys, null (no field is nullable), wrong types, invalid
// UTF-8 and anything after the object are refused, each with a message
// that names the field. Every error is of class ErrInvalidArgument.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return invalidBody("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	t := reflect.TypeOf(v).Elem()
	if err := checkValue(dec, t, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidBody("unexpected data after the JSON object")
	}
	// The check above let through only exact keys (json.Unmarshal alone
	// would match them case-insensitively), each once, of the right kinds.
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalidBody("field %q: want %s", te.Field, kindName(te.Type))
		}
		return invalidBody("%v", err)
	}
	return nil
}

func invalidBody(format string, args ...any) error {
	return socketapi.Errorf(socketapi.ErrInvalidArgument, "invalid JSON body: "+format, args...)
}

// checkValue reads one JSON value from dec and checks it against t: its
// kind, and for objects the exact keys (struct fields by their JSON name;
// any key of a map, each once).
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(err)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	where := "the body"
	if path != "" {
		where = fmt.Sprintf("field %q", path)
	}
	wrong := func(got string) error {
		return invalidBody("%s: want %s, got %s", where, kindName(t), got)
	}
	switch tok := tok.(type) {
	case nil:
		// No field is nullable in the API's document: a field is left
		// out, never null.
		return wrong("null")
	case bool:
		if t.Kind() != reflect.Bool {
			return wrong("a boolean")
		}
	case float64:
		switch t.Kind() {
		case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return wrong("a number")
		}
	case string:
		if t.Kind() != reflect.String {
			return wrong("a string")
		}
	case json.Delim:
		switch {
		case tok == '[' && t.Kind() == reflect.Slice:
			for i := 0; dec.More(); i++ {
				if err := checkValue(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		case tok == '{' && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map && t.Key().Kind() == reflect.String):
			fields := jsonFields(t)
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return syntaxErr(err)
				}
				key := kt.(string)
				sub := key
				if path != "" {
					sub = path + "." + key
				}
				if seen[key] {
					return invalidBody("duplicate field %q", sub)
				}
				seen[key] = true
				ft := t.Elem
				if t.Kind() == reflect.Struct {
					f, ok := fields[key]
					if !ok {
						return unknownField(sub, key, fields)
					}
					ft = func() reflect.Type { return f }
				}
				if err := checkValue(dec, ft(), sub); err != nil {
					return err
				}
			}
		case tok == '[':
			return wrong("an array")
		default:
			return wrong("an object")
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return syntaxErr(err)
		}
	}
	return nil
}

func unknownField(path, key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return invalidBody("unknown field %q (did you mean %q?)", path, name)
		}
	}
	return invalidBody("unknown field %q", path)
}

// jsonFields maps the JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t.Kind() != reflect.Struct {
		return nil
	}
	if m, ok := fieldsOf.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldsOf.Store(t, m)
	return m
}

// fieldsOf caches jsonFields by struct type (the maps are only read).
var fieldsOf sync.Map

func syntaxErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalidBody("unexpected end of JSON")
	}
	return invalidBody("%v", err)
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(kindName(t.Elem()), "a ") + " values"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// parseQuery parses a raw query, accepting only the allowed keys, each
// once.
func parseQuery(raw string, allowed ...string) (map[string]string, error) {
	if raw == "" {
		return nil, nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, socketapi.Errorf(socketapi.ErrInvalidArgument, "invalid query: %v", err)
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			if len(allowed) == 0 {
				return nil, socketapi.Errorf(socketapi.ErrInvalidArgument, "unknown query parameter %q: this call takes none", k)
			}
			return nil, socketapi.Errorf(socketapi.ErrInvalidArgument, "unknown query parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) != 1 {
			return nil, socketapi.Errorf(socketapi.ErrInvalidArgument, "query parameter %q given %d times", k, len(vs))
		}
		if vs[0] == "" {
			return nil, socketapi.Errorf(socketapi.ErrInvalidArgument, "query parameter %q is empty", k)
		}
		out[k] = vs[0]
	}
	return out, nil
}

// parseBool parses a boolean query parameter: true or false ("" = false).
func parseBool(name, v string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, socketapi.Errorf(socketapi.ErrInvalidArgument, "invalid %s %q: want true or false", name, v)
}

// maxTail is the largest tail a caller may ask for.
const maxTail = 1000000

// parseTail parses the tail query parameter: a number of lines from 0 to
// maxTail (0: none, only what follows), or all ("" = all, returned as
// nil).
func parseTail(v string) (*int, error) {
	if v == "" || v == "all" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxTail || strconv.Itoa(n) != v {
		return nil, socketapi.Errorf(socketapi.ErrInvalidArgument, "invalid tail %q: want a number of lines from 0 to %d, or all", v, maxTail)
	}
	return &n, nil
}
