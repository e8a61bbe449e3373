package openapi

import (
	"strings"
)

// Missing returns the route patterns, in Go's ServeMux form ("POST
// /api/v1/send", "GET /api/v1/templates/{id}"), that the document does not
// describe, in their given order without repeats. Wildcard names do not
// matter ("{id}" matches "{templateId}"), nor does a host. A pattern
// without a method is a mount point: it counts as documented when some
// documented path equals it or, ending in "/", lies beneath it.
func Missing(patterns []string) []string {
	documented := make(map[string]bool, len(operations))
	var paths []string
	for _, op := range operations {
		p := normalizePath(op.Path)
		documented[op.Method+" "+p] = true
		paths = append(paths, p)
	}
	var out []string
	seen := map[string]bool{}
	for _, pat := range patterns {
		if seen[pat] {
			continue
		}
		seen[pat] = true
		method, path := splitPattern(pat)
		if !covered(documented, paths, method, normalizePath(path)) {
			out = append(out, pat)
		}
	}
	return out
}

func covered(documented map[string]bool, paths []string, method, path string) bool {
	if method != "" {
		return documented[method+" "+path]
	}
	for _, p := range paths {
		if p == path || (strings.HasSuffix(path, "/") && strings.HasPrefix(p, path)) {
			return true
		}
	}
	return false
}

// splitPattern splits "[METHOD ][HOST]/PATH" the way ServeMux reads it.
func splitPattern(pat string) (method, path string) {
	pat = strings.TrimSpace(pat)
	if i := strings.IndexAny(pat, " \t"); i >= 0 {
		method, pat = pat[:i], strings.TrimLeft(pat[i:], " \t")
	}
	if i := strings.IndexByte(pat, '/'); i > 0 {
		pat = pat[i:]
	}
	return method, pat
}

// normalizePath drops wildcard names, so "{id}", "{id...}" and "{$}" become
// "{}", "{...}" and "{$}".
func normalizePath(path string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			return b.String()
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			b.WriteString(path)
			return b.String()
		}
		b.WriteString(path[:i])
		name := path[i+1 : i+j]
		switch {
		case name == "$":
			b.WriteString("{$}")
		case strings.HasSuffix(name, "..."):
			b.WriteString("{...}")
		default:
			b.WriteString("{}")
		}
		path = path[i+j+1:]
	}
}
