package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// SchemaVersion is the version of registry.json this package writes, and
// the newest it reads.
const SchemaVersion = 1

// encode appends the file form of s to b: one record per line, sorted by
// user ID, then the port reservations. Only lastUsedAtMs is formatted here;
// the rest of each record was encoded once, when its entry was made.
func (s *state) encode(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, `,"records":[`...)
	for i, e := range s.list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '\n')
		b = append(b, e.prefix...)
		b = strconv.AppendInt(b, e.lastUsed.Load(), 10)
		b = append(b, '}')
	}
	if len(s.list) > 0 {
		b = append(b, '\n')
	}
	b = append(b, `],"ports":{`...)
	for i, id := range s.portIDs {
		if i > 0 {
			b = append(b, ',')
		}
		// User IDs are validated: nothing in them needs escaping.
		b = append(b, '\n', '"')
		b = append(b, id...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(s.ports[id]), 10)
	}
	if len(s.portIDs) > 0 {
		b = append(b, '\n')
	}
	b = append(b, '}')
	if len(s.uidIDs) > 0 {
		// Only when some user has one: a file without is read by agents
		// that predate uids per tenant.
		b = append(b, `,"uids":{`...)
		for i, id := range s.uidIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '\n', '"')
			b = append(b, id...)
			b = append(b, '"', ':')
			b = strconv.AppendInt(b, int64(s.uids[id]), 10)
		}
		b = append(b, '\n', '}')
	}
	if len(s.nodeIDs) > 0 {
		// Only when some user is pinned (a cluster runtime): a file
		// without is read by agents that predate pins.
		b = append(b, `,"nodes":{`...)
		for i, id := range s.nodeIDs {
			if i > 0 {
				b = append(b, ',')
			}
			// Node names are validated too: nothing to escape.
			b = append(b, '\n', '"')
			b = append(b, id...)
			b = append(b, '"', ':', '"')
			b = append(b, s.nodes[id]...)
			b = append(b, '"')
		}
		b = append(b, '\n', '}')
	}
	return append(b, "}\n"...)
}

// fileAny is any registry file: registry.json (version, records, ports;
// records and ports are pointers so that a missing or null field is told
// apart from an empty one) or the platform's old registry (entries, no
// version field), whose entries are decoded apart, leniently.
type fileAny struct {
	Version *int              `json:"version"`
	Records *[]fileRecord     `json:"records"`
	Ports   *map[string]int   `json:"ports"`
	UIDs    map[string]int    `json:"uids"`
	Nodes   map[string]string `json:"nodes"`
	Entries json.RawMessage   `json:"entries"`
}

type legacyEntry struct {
	ContainerName string `json:"containerName"`
	UserID        string `json:"userId"`
	CreatedAtMs   int64  `json:"createdAtMs"`
	LastUsedAtMs  int64  `json:"lastUsedAtMs"`
	Port          int    `json:"port"`
	Image         string `json:"image"`
	ConfigHash    string `json:"configHash"`
}

// decode parses a registry file, current or legacy (legacy reports which).
// It never returns an empty state for input that is not explicitly an
// empty registry: anything else it cannot fully account for is an error.
// An empty input is an error too; the caller decides that an empty file
// counts as missing.
func decode(data []byte) (s *state, legacy bool, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, false, errors.New("no content")
	}
	var f fileAny
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a field this version does not know would be lost on the next write
	err = dec.Decode(&f)
	if err == nil {
		end := dec.InputOffset()
		if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
			pos := int64(len(data) - len(rest))
			return nil, false, jsonErr(data, &json.SyntaxError{Offset: pos + 1}, "data after the end of the registry")
		}
	}
	if err != nil && strings.HasPrefix(err.Error(), "json: unknown field ") {
		// The old registry may hold fields of its own: it is read leniently.
		var lf fileAny
		if json.Unmarshal(data, &lf) == nil && lf.Version == nil && lf.Entries != nil {
			s, err := decodeLegacy(data, lf.Entries)
			return s, true, err
		}
	}
	if err != nil {
		return nil, false, jsonErr(data, err, "")
	}
	switch {
	case f.Version != nil:
		if *f.Version > SchemaVersion {
			return nil, false, fmt.Errorf("schema version %d is newer than this agent understands (%d)", *f.Version, SchemaVersion)
		}
		if *f.Version < 1 {
			return nil, false, fmt.Errorf("unknown schema version %d", *f.Version)
		}
		if f.Entries != nil {
			return nil, false, errors.New(`a legacy "entries" list in a versioned registry`)
		}
		s, err := decodeV1(&f)
		return s, false, err
	case f.Entries != nil:
		if f.Records != nil || f.Ports != nil || f.UIDs != nil || f.Nodes != nil {
			return nil, false, errors.New(`"records", "ports", "uids" or "nodes" without a "version" field`)
		}
		s, err := decodeLegacy(data, f.Entries)
		return s, true, err
	default:
		return nil, false, errors.New(`not a registry file: no "version" field (nor a legacy "entries" list)`)
	}
}

func decodeV1(f *fileAny) (*state, error) {
	if f.Records == nil {
		return nil, errors.New(`"records" is missing`)
	}
	if f.Ports == nil {
		return nil, errors.New(`"ports" is missing`)
	}
	s := emptyState()
	for id, port := range *f.Ports {
		if !validUserID(id) {
			return nil, fmt.Errorf("ports: invalid user id %q", id)
		}
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("ports: user %q: port %d out of range", id, port)
		}
		if other, ok := s.byPort[port]; ok {
			a, b := min(id, other), max(id, other)
			return nil, fmt.Errorf("ports: port %d is reserved by both %q and %q", port, a, b)
		}
		s.ports[id] = port
		s.byPort[port] = id
		s.portIDs = append(s.portIDs, id)
	}
	slices.Sort(s.portIDs)
	for id, uid := range f.UIDs {
		if !validUserID(id) {
			return nil, fmt.Errorf("uids: invalid user id %q", id)
		}
		if uid < 1 || uid > MaxUID {
			return nil, fmt.Errorf("uids: user %q: uid %d out of range", id, uid)
		}
		if other, ok := s.byUID[uid]; ok {
			a, b := min(id, other), max(id, other)
			return nil, fmt.Errorf("uids: uid %d is reserved by both %q and %q", uid, a, b)
		}
		s.uids[id] = uid
		s.byUID[uid] = id
		s.uidIDs = append(s.uidIDs, id)
	}
	slices.Sort(s.uidIDs)
	for id, node := range f.Nodes {
		if !validUserID(id) {
			return nil, fmt.Errorf("nodes: invalid user id %q", id)
		}
		if !validNodeName(node) {
			return nil, fmt.Errorf("nodes: user %q: invalid node name %q", id, node)
		}
		s.nodes[id] = node
		s.byNode[node]++
		s.nodeIDs = append(s.nodeIDs, id)
	}
	slices.Sort(s.nodeIDs)
	for i, fr := range *f.Records {
		rec := Record{
			UserID: fr.UserID, ContainerName: fr.ContainerName, ContainerID: fr.ContainerID,
			Image: fr.Image, Port: fr.Port, UID: fr.UID, ConfigHash: fr.ConfigHash, HashVersion: fr.HashVersion,
			DesiredHash: fr.DesiredHash, Renew: fr.Renew, State: fr.State, Labels: fr.Labels,
			CreatedAtMs: fr.CreatedAtMs, LastUsedAtMs: fr.LastUsedAtMs,
		}
		if err := rec.validate(); err != nil {
			return nil, fmt.Errorf("records[%d]: %w", i, err)
		}
		if _, dup := s.recs[rec.UserID]; dup {
			return nil, fmt.Errorf("records[%d]: user %q appears twice", i, rec.UserID)
		}
		if rec.Port != 0 {
			if p, ok := s.ports[rec.UserID]; !ok || p != rec.Port {
				return nil, fmt.Errorf("records[%d]: user %q has port %d, but its reservation is %s", i, rec.UserID, rec.Port, portText(p, ok))
			}
		}
		if rec.UID != 0 {
			if u, ok := s.uids[rec.UserID]; !ok || u != rec.UID {
				return nil, fmt.Errorf("records[%d]: user %q has uid %d, but its reservation is %s", i, rec.UserID, rec.UID, portText(u, ok))
			}
		}
		e := newEntry(rec)
		s.recs[rec.UserID] = e
		s.list = append(s.list, e)
	}
	slices.SortFunc(s.list, byUserID)
	return s, nil
}

// decodeLegacy decodes the entries of the platform's old registry; data is
// the whole file, for error positions.
func decodeLegacy(data []byte, raw json.RawMessage) (*state, error) {
	var entries *[]legacyEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Offset += int64(bytes.Index(data, raw)) // raw is a slice of data's text
		}
		return nil, jsonErr(data, err, "")
	}
	if entries == nil {
		return nil, errors.New(`legacy "entries" is null`)
	}
	s := emptyState()
	for i, le := range *entries {
		rec := Record{
			UserID: le.UserID, ContainerName: le.ContainerName, Image: le.Image, Port: le.Port,
			ConfigHash: le.ConfigHash, CreatedAtMs: le.CreatedAtMs, LastUsedAtMs: le.LastUsedAtMs,
		}
		if err := rec.validate(); err != nil {
			return nil, fmt.Errorf("entries[%d]: %w", i, err)
		}
		if _, dup := s.recs[rec.UserID]; dup {
			return nil, fmt.Errorf("entries[%d]: user %q appears twice", i, rec.UserID)
		}
		if rec.Port != 0 {
			if other, taken := s.byPort[rec.Port]; taken {
				return nil, fmt.Errorf("entries[%d]: port %d is claimed by both %q and %q", i, rec.Port, other, rec.UserID)
			}
			s.ports[rec.UserID] = rec.Port
			s.byPort[rec.Port] = rec.UserID
			s.portIDs = append(s.portIDs, rec.UserID)
		}
		e := newEntry(rec)
		s.recs[rec.UserID] = e
		s.list = append(s.list, e)
	}
	slices.SortFunc(s.list, byUserID)
	slices.Sort(s.portIDs)
	return s, nil
}

func portText(p int, ok bool) string {
	if !ok {
		return "missing"
	}
	return strconv.Itoa(p)
}

// jsonErr adds the line and column of a JSON error's position; msg, when
// set, replaces the error's own text.
func jsonErr(data []byte, err error, msg string) error {
	pos := int64(-1) // the byte at fault; len(data) for the end of the input
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		pos = se.Offset - 1
	case errors.As(err, &te):
		pos = te.Offset - 1
	case errors.Is(err, io.ErrUnexpectedEOF):
		pos = int64(len(data))
	}
	if msg == "" {
		msg = err.Error()
	}
	if pos < 0 || pos > int64(len(data)) {
		return errors.New(msg)
	}
	line := 1 + bytes.Count(data[:pos], []byte{'\n'})
	col := int(pos) - bytes.LastIndexByte(data[:pos], '\n')
	return fmt.Errorf("line %d, column %d: %s", line, col, msg)
}
