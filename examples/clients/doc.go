// Package clients shows, in its tests, Go clients that nobody here wrote
// calling an API behind apitoken's middleware on a loopback server:
// golang.org/x/oauth2's transport with the account header beside it (the
// README's ten lines), the same transport without it (the 400 that names the
// header and the Basic form), and the security providers that oapi-codegen's
// generated clients take (Bearer with an apiKey header, and Basic).
package clients
