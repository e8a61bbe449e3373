package sqldb

import (
	"regexp"
	"strings"
)

// masked replaces every secret MaskDSN hides.
const masked = "***"

var (
	// secretParam matches password-like query parameters of URL DSNs.
	secretParam = regexp.MustCompile(`(?i)([?&](?:password|passwd|pwd|sslpassword|_auth_pass|_key|_crypto_key)=)[^&]*`)
	// secretKeyword matches password-like settings of keyword/value DSNs
	// (host=… password=…), quoted or not.
	mysqlNet      = regexp.MustCompile(`@(?:tcp6?|unix)?\(`)
	keywordForm   = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)
	secretKeyword = regexp.MustCompile(`(?i)\b((?:password|passwd|pwd|sslpassword)\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)
)

// MaskDSN returns dsn with its password and password-like parameters replaced
// by ***, for logs, errors and printed configuration. It never fails: a DSN it
// cannot parse is masked as far as it can be recognised.
func MaskDSN(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"):
		// A file path may hold ':' and '@' that are not credentials.
		return secretParam.ReplaceAllString(dsn, "${1}"+masked)
	case !strings.Contains(dsn, "://") && keywordForm.MatchString(dsn):
		return secretKeyword.ReplaceAllString(dsn, "${1}"+masked)
	default:
		return secretParam.ReplaceAllString(maskUserinfo(dsn), "${1}"+masked)
	}
}

// maskUserinfo hides the password in user:pass@host, with or without a
// scheme; the password may itself contain ':', '@', '/' or '?'.
func maskUserinfo(dsn string) string {
	start := 0
	if i := strings.Index(dsn, "://"); i >= 0 {
		start = i + 3
	}
	rest := dsn[start:]
	at := -1
	if locs := mysqlNet.FindAllStringIndex(rest, -1); len(locs) > 0 {
		// The MySQL driver form: userinfo ends at the '@' before tcp(…).
		at = locs[len(locs)-1][0]
	}
	// Otherwise it ends at the last '@' before the query or, when no '@'
	// comes before the first '?' (a '?' in the password), the last '@'.
	if q := strings.IndexByte(rest, '?'); at < 0 && q >= 0 {
		at = strings.LastIndexByte(rest[:q], '@')
	}
	if at < 0 {
		at = strings.LastIndexByte(rest, '@')
	}
	if at < 0 {
		return dsn
	}
	colon := strings.IndexByte(rest[:at], ':')
	if colon < 0 {
		return dsn
	}
	return dsn[:start] + rest[:colon+1] + masked + rest[at:]
}
