package httpcheck

import (
	"context"
	"net"
	"net/url"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Precheck is http.check's pre-flight check: the URL parses and its host
// resolves, and every header reference (headersEnv, headersFile) resolves.
// Nothing is requested: a health check of a service not yet restored fails
// now, and that is what the step is for.
func (c *Checker) Precheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args Args
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	resolves := URLResolves(ctx, args.URL, args.URL)
	resolves.Advisory = true // the run may create the host (DNS in the edge layer)
	out := []runbooks.CheckResult{resolves}
	if c.secrets == nil && len(args.HeadersEnv)+len(args.HeadersFile) > 0 {
		return append(out, runbooks.Fail("header references", "this worker lets runbooks read no secrets", "configure secrets.env / secrets.dirs in the worker config"))
	}
	for name, env := range args.HeadersEnv {
		check := "header " + name + " from $" + env
		if _, err := c.secrets.EnvValue(env, "http.check headersEnv."+name); err != nil {
			out = append(out, runbooks.Fail(check, failure.Message(err), "set "+env+" in the worker's environment (and allow it in secrets.env)"))
		} else {
			out = append(out, runbooks.Pass(check, "set"))
		}
	}
	for name, file := range args.HeadersFile {
		check := "header " + name + " from " + file
		if _, err := c.secrets.FileValue(file, "http.check headersFile."+name); err != nil {
			out = append(out, runbooks.Fail(check, failure.Message(err), "put the file on the worker (in a directory secrets.dirs allows)"))
		} else {
			out = append(out, runbooks.Pass(check, "readable"))
		}
	}
	return out
}

// URLResolves checks that rawURL parses and its host resolves; shown is
// how the URL may be named in the result ("$ENV" for one read from the
// environment: its value never appears).
func URLResolves(ctx context.Context, rawURL, shown string) runbooks.CheckResult {
	name := "URL " + shown + " resolves"
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return runbooks.Fail(name, "not a URL with a host", "write the whole URL, e.g. https://host/path")
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return runbooks.Pass(name, "an IP address")
	}
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		msg := "the host does not resolve"
		if shown == rawURL {
			msg = "host " + host + " does not resolve"
		}
		return runbooks.Fail(name, msg, "check the name, and the worker's DNS (a DR-region name may only resolve once the network layer is up)")
	}
	return runbooks.Pass(name, "resolves")
}
