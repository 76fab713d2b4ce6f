package apitoken_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// A client command: its program, its arguments for a URL, an account id
// and a secret, and whether it sends Basic credentials only when a 401
// challenges for them.
type realClient struct {
	name, program string
	args          func(url, account, secret string) []string
	waits         bool
}

// pyBasic is Python's urllib with HTTPBasicAuthHandler, which sends the
// credentials only in answer to a Basic challenge of a realm it knows
// (None: any realm; "api": the library's default).
const pyBasic = `import sys, urllib.request as u
url, account, secret, realm = sys.argv[1:5]
m = u.HTTPPasswordMgrWithDefaultRealm()
m.add_password(None if realm == "-" else realm, url, account, secret)
sys.stdout.write(u.build_opener(u.HTTPBasicAuthHandler(m)).open(url).read().decode())`

// pyRequests is the requests library's Basic auth (sent at once).
const pyRequests = `import sys, requests
url, account, secret = sys.argv[1:4]
r = requests.get(url, auth=(account, secret)); r.raise_for_status(); sys.stdout.write(r.text)`

var realClients = []realClient{
	{"curl --anyauth", "curl", func(url, a, s string) []string {
		return []string{"-sS", "--fail", "--anyauth", "-u", a + ":" + s, url}
	}, true},
	{"curl -u (Basic at once)", "curl", func(url, a, s string) []string { return []string{"-sS", "--fail", "-u", a + ":" + s, url} }, false},
	{"curl --oauth2-bearer with the account header", "curl", func(url, a, s string) []string {
		return []string{"-sS", "--fail", "--oauth2-bearer", s, "-H", "X-Account-ID: " + a, url}
	}, false},
	{"wget --user --password", "wget", func(url, a, s string) []string {
		return []string{"-q", "-O", "-", "--user=" + a, "--password=" + s, url}
	}, true},
	{"python3 urllib HTTPBasicAuthHandler, any realm", "python3", func(url, a, s string) []string {
		return []string{"-c", pyBasic, url, a, s, "-"}
	}, true},
	{"python3 urllib HTTPBasicAuthHandler, realm api", "python3", func(url, a, s string) []string {
		return []string{"-c", pyBasic, url, a, s, "api"}
	}, true},
	{"python3 requests auth=(account, secret)", "python3", func(url, a, s string) []string {
		return []string{"-c", pyRequests, url, a, s}
	}, false},
	{"httpie -a (Basic)", "http", func(url, a, s string) []string {
		return []string{"--ignore-stdin", "--check-status", "-b", "-a", a + ":" + s, "GET", url}
	}, false},
	{"httpie -A bearer with the account header", "http", func(url, a, s string) []string {
		return []string{"--ignore-stdin", "--check-status", "-b", "-A", "bearer", "-a", s, "GET", url, "X-Account-ID:" + a}
	}, false},
}

// installHint says how to install a client's program on Debian.
var installHint = map[string]string{"curl": "curl", "wget": "wget", "python3": "python3", "http": "httpie"}

// TestRealClients drives clients nobody here wrote (curl, wget, Python's
// urllib and requests) against the default middleware on a loopback
// server: each must get through with a valid token. Those that wait for a
// challenge must fail against a middleware that reads no Basic, which is
// what makes the Basic challenge necessary. A missing program skips its
// case, saying which.
func TestRealClients(t *testing.T) {
	iss, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_demo", Name: "cli"})
	require.NoError(t, err)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := apitoken.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"account_id": tok.AccountID, "token_id": tok.ID})
	})
	srv := httptest.NewServer(iss.Middleware(api))
	defer srv.Close()
	bearerOnly, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: apitoken.FromBearer("")})
	require.NoError(t, err)
	noBasic := httptest.NewServer(bearerOnly(api))
	defer noBasic.Close()

	for _, c := range realClients {
		t.Run(c.name, func(t *testing.T) {
			prog, err := exec.LookPath(c.program)
			if err != nil {
				t.Skipf("%s is not installed: apt-get install -y %s", c.program, installHint[c.program])
			}
			if c.name == "python3 requests auth=(account, secret)" {
				if err := exec.Command(prog, "-c", "import requests").Run(); err != nil {
					t.Skip("the Python requests library is not installed: apt-get install -y python3-requests")
				}
			}
			out, err := exec.CommandContext(t.Context(), prog, c.args(srv.URL+"/api/v1/whoami", tok.AccountID, secret)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			var got map[string]string
			require.NoError(t, json.Unmarshal(out, &got), "%s", out)
			assert.Equal(t, map[string]string{"account_id": tok.AccountID, "token_id": tok.ID}, got)

			if c.waits {
				out, err := exec.CommandContext(t.Context(), prog, c.args(noBasic.URL+"/api/v1/whoami", tok.AccountID, secret)...).CombinedOutput()
				assert.Error(t, err, "without a Basic challenge %s should not send credentials: %s", c.name, out)
				assert.NotContains(t, string(out), tok.ID)
			}
		})
	}

	// Clients that forget the account header, or use another scheme,
	// learn the fix from the answer.
	const (
		noAccount   = "The token must come with its account id in the X-Account-ID header, or both as Authorization: Basic base64(<account id>:<token>)."
		otherScheme = "The Authorization scheme is not one this API accepts; use Bearer (with X-Account-ID) or Basic."
	)
	for _, c := range []struct {
		name, program string
		args          []string
		status        int
		detail        string
	}{
		{"curl --oauth2-bearer without the account header", "curl", []string{"-sS", "--oauth2-bearer", secret, srv.URL + "/"}, 400, noAccount},
		{"httpie -A bearer without the account header", "http", []string{"--ignore-stdin", "-b", "-A", "bearer", "-a", secret, "GET", srv.URL + "/"}, 400, noAccount},
		{"curl with Authorization: token", "curl", []string{"-sS", "-H", "Authorization: token " + secret, "-H", "X-Account-ID: " + tok.AccountID, srv.URL + "/"}, 401, otherScheme},
	} {
		t.Run(c.name, func(t *testing.T) {
			prog, err := exec.LookPath(c.program)
			if err != nil {
				t.Skipf("%s is not installed: apt-get install -y %s", c.program, installHint[c.program])
			}
			out, err := exec.CommandContext(t.Context(), prog, c.args...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			var p struct {
				Status int
				Detail string
			}
			require.NoError(t, json.Unmarshal(out, &p), "%s", out)
			assert.Equal(t, c.status, p.Status)
			assert.Equal(t, c.detail, p.Detail)
		})
	}

	t.Run("curl shows both challenges", func(t *testing.T) {
		prog, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl is not installed: apt-get install -y curl")
		}
		out, err := exec.CommandContext(t.Context(), prog, "-sS", "-D", "-", "-o", "/dev/null", srv.URL+"/").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "HTTP/1.1 401")
		assert.Contains(t, strings.ToLower(string(out)), "www-authenticate: bearer realm=\"api\"\r\n")
		assert.Contains(t, strings.ToLower(string(out)), "www-authenticate: basic realm=\"api\", charset=\"utf-8\"\r\n")
	})
}
