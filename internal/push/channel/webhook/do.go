package webhook

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects is how many requests a delivery may make through 307/308
// redirects before the last 3xx is returned: http.Client stops when its
// CheckRedirect sees this many earlier requests.
const maxRedirects = 10

// do sends req as http.Client.Do would with the Sender's redirect rule.
//
// With a client that has neither a cookie jar nor an overall timeout (the
// egress guard's), it calls the transport directly: Client.Do clones every
// request's headers up front in case a redirect needs them, the largest
// allocation of a delivery after the transport's own. do follows redirects
// itself instead, as Client.Do does: a 307/308 with a Location is followed
// with the same headers, a Referer and the body re-read through GetBody,
// for at most maxRedirects requests; any other 3xx, or one without a
// Location, is returned as is; errors are *url.Error as Client.Do returns.
func (s *Sender) do(req *http.Request) (*http.Response, error) {
	if s.rt == nil {
		return s.client.Do(req)
	}
	first := req
	var via []*http.Request
	for {
		resp, err := s.roundTrip(req)
		if err != nil {
			return nil, &url.Error{Op: "Post", URL: urlString(req.URL), Err: err}
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return resp, nil
		}
		u, err := req.URL.Parse(loc)
		if err != nil {
			resp.Body.Close()
			return nil, &url.Error{Op: "Post", URL: urlString(req.URL),
				Err: fmt.Errorf("failed to parse Location header %q: %v", loc, err)}
		}
		via = append(via, req)
		if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect ||
			len(via) >= maxRedirects {
			// 301/302/303 would turn the POST into a GET, which the
			// redirect rule refuses: the 3xx itself is the answer.
			return resp, nil
		}
		next, err := s.redirect(first, req, resp, u)
		if err != nil {
			resp.Body.Close()
			return nil, &url.Error{Op: "Post", URL: urlString(req.URL), Err: err}
		}
		// Read a little of the 3xx so its connection can be reused.
		const maxBodySlurp = 2 << 10
		if resp.ContentLength == -1 || resp.ContentLength <= maxBodySlurp {
			_, _ = io.CopyN(io.Discard, resp.Body, maxBodySlurp)
		}
		resp.Body.Close()
		req = next
	}
}

// redirect builds the request that follows resp, a 307/308 answering last,
// to u: first's method, headers and body, and last's URL as Referer unless
// that would leak an https URL to http.
func (s *Sender) redirect(first, last *http.Request, resp *http.Response, u *url.URL) (*http.Request, error) {
	body, err := first.GetBody()
	if err != nil {
		return nil, err
	}
	next := (&http.Request{
		Method: first.Method, Response: resp, URL: u, Header: maps.Clone(first.Header),
		Body: body, GetBody: first.GetBody, ContentLength: first.ContentLength,
	}).WithContext(first.Context())
	if !(last.URL.Scheme == "https" && u.Scheme == "http") {
		ref := last.URL.String()
		if last.URL.User != nil { // a Location may carry credentials
			ref = strings.Replace(ref, last.URL.User.String()+"@", "", 1)
		}
		next.Header.Set("Referer", ref)
	}
	return next, nil
}

// urlString is u for an error, its password masked as http.Client does.
func urlString(u *url.URL) string {
	if _, ok := u.User.Password(); ok {
		masked := *u
		masked.User = url.UserPassword(u.User.Username(), "***")
		return masked.String()
	}
	return u.String()
}

// roundTrip is one request through the transport, with the checks
// http.Client makes around it.
func (s *Sender) roundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		var tlsErr tls.RecordHeaderError
		if errors.As(err, &tlsErr) && string(tlsErr.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", s.rt)
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	return resp, nil
}
