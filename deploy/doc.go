// Package deploy holds the deployment artefacts of Themis Maintenance (the
// Dockerfile, the compose stack, Kubernetes manifests, the Grafana dashboard
// and the Prometheus alert rules) and the tests that check them against the
// code: every metric and label the dashboard and rules use is emitted, and
// every manifest decodes strictly and names the images, ports, environment
// variables, config keys, probe paths and search attributes the code has.
package deploy
