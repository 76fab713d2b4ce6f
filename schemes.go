package apitoken

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// What a Guard's Extractor reads is found once, when the Guard is made, by
// calling the Extractor with a probe: a request whose context is a
// *probe. The library's extractors (FromBearer, FromScheme, FromBasic,
// FromHeader; Chain passes the request on) note what they read in it and a
// mistake in their configuration, and find nothing. A custom Extractor sees
// a request without credentials and notes nothing. The Guard uses the notes
// to offer a Basic challenge when Basic is read, to name the accepted forms
// when a request uses another Authorization scheme, and to refuse a bad
// configuration in NewGuard.
type probe struct {
	context.Context
	schemes []string // Authorization schemes read, lower case, in order
	forms   []string // what each extractor reads, as the answers name it
	err     error    // the first configuration mistake
}

// probing returns the probe when r is one.
func probing(r *http.Request) (*probe, bool) {
	p, ok := r.Context().(*probe)
	return p, ok
}

// note records what an extractor reads: an Authorization scheme (lower
// case; "" for a header of its own) and the form as an answer names it.
func (p *probe) note(scheme, form string) {
	if scheme != "" {
		if slices.Contains(p.schemes, scheme) {
			return
		}
		p.schemes = append(p.schemes, scheme)
	}
	if !slices.Contains(p.forms, form) {
		p.forms = append(p.forms, form)
	}
}

func (p *probe) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// describe probes ex. A custom extractor may expect what the app's other
// middleware puts in a request, and panic without it: the probe then
// learns what it learnt before, and the Guard is made all the same.
func describe(ex Extractor) (p *probe) {
	p = &probe{Context: context.Background()}
	r := (&http.Request{
		Method: http.MethodGet, URL: &url.URL{Path: "/"}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, Host: "localhost",
	}).WithContext(p)
	defer func() { _ = recover() }()
	_, _, _ = ex(r)
	return p
}

// reads reports whether the probed extractor reads the Authorization scheme
// (lower case).
func (p *probe) reads(scheme string) bool { return slices.Contains(p.schemes, scheme) }

// known reports whether the probe found any of the library's extractors.
func (p *probe) known() bool { return len(p.forms) > 0 }

// accepted says in a sentence which credentials the probed extractor reads,
// for the answer to a request that uses another Authorization scheme. It
// never names anything from a request.
func (p *probe) accepted() string {
	if len(p.schemes) == 0 {
		return "This API does not read the Authorization header; send the token in " + strings.Join(p.forms, " or ") + "."
	}
	return "The Authorization scheme is not one this API accepts; use " + strings.Join(p.forms, " or ") + "."
}

// checkHeaderName refuses a header name that no request can carry, for the
// configuration of an extractor.
func checkHeaderName(what, name string) error {
	for i := range len(name) {
		if !tchar[name[i]] {
			return fmt.Errorf("%w: %s %q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", ErrInvalidInput, what, name)
		}
	}
	return nil
}

// checkScheme refuses an auth-scheme that FromScheme cannot read.
func checkScheme(scheme string) error {
	if scheme == "" {
		return fmt.Errorf("%w: FromScheme needs a scheme, such as \"token\"", ErrInvalidInput)
	}
	for i := range len(scheme) {
		if !tchar[scheme[i]] {
			return fmt.Errorf("%w: FromScheme scheme %q is not a valid auth-scheme (letters, digits and !#$%%&'*+-.^_`|~ only)", ErrInvalidInput, scheme)
		}
	}
	if strings.EqualFold(scheme, "basic") {
		return fmt.Errorf("%w: FromScheme cannot read Basic credentials; use FromBasic", ErrInvalidInput)
	}
	return nil
}
