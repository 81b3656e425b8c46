// Package e2e holds the end-to-end tests of the gateway binary against real
// components: Postfix as the internal mail server, swaks and smtp-source as
// clients, an smtp-sink as the forged sender's MX and a DNS server. They run
// as root in `make test` and CI, and fail when a component is missing.
package e2e
