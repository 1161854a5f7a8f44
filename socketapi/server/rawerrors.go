package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// net/http answers some requests itself, before any handler runs: a
// malformed request line or header, a path that is not a valid URI (bad
// percent-encoding), a missing Host, headers too large (431), an
// unsupported HTTP version or transfer encoding. It writes those answers
// straight to the connection as plain text, in one write of exactly this
// shape:
//
//	HTTP/1.1 <status line>\r\n<httpErrorHeaders><message>
//
// envelopeConn recognises that shape and writes the API's error envelope
// instead, so that every answer of the socket is one a client can decode.
// A handler's answer never has that shape (it always carries a Date
// header, and its headers are written through the server's buffer).
const httpErrorHeaders = "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

type envelopeListener struct{ net.Listener }

func (l envelopeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &envelopeConn{Conn: c}, nil
}

type envelopeConn struct{ net.Conn }

func (c *envelopeConn) Write(p []byte) (int, error) {
	if out, ok := envelopeOf(p); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// envelopeOf rewrites one of net/http's own plain-text error answers as
// the API's error envelope.
func envelopeOf(p []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok {
		return nil, false
	}
	statusLine, rest, ok := bytes.Cut(rest, []byte("\r\n"))
	if !ok {
		return nil, false
	}
	msg, ok := bytes.CutPrefix(rest, []byte(httpErrorHeaders))
	if !ok || len(statusLine) < 3 {
		return nil, false
	}
	status, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	code := socketapi.CodeInvalidArgument
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		code = socketapi.CodeTooLarge
	case status >= 500:
		code = socketapi.CodeInternal
	}
	text := string(msg)
	if text == "" {
		text = http.StatusText(status)
	}
	body, _ := json.Marshal(socketapi.ErrorBody{Error: socketapi.ErrorDetail{Code: code, Message: text}})
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n", statusLine, len(body)+1, body)
	return b.Bytes(), true
}
