package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dependsOn is compose's depends_on: a list of services, or a map of
// service to condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			(*d)[s] = "service_started"
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: depends_on must be a list or a map", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var cond struct {
			Condition string `yaml:"condition"`
		}
		// Strict by hand: only "condition" is allowed.
		for j := 0; j+1 < len(n.Content[i+1].Content); j += 2 {
			if k := n.Content[i+1].Content[j].Value; k != "condition" {
				return fmt.Errorf("line %d: depends_on: unknown field %q", n.Content[i+1].Line, k)
			}
		}
		if err := n.Content[i+1].Decode(&cond); err != nil {
			return err
		}
		(*d)[n.Content[i].Value] = cond.Condition
	}
	return nil
}

type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		DependsOn   dependsOn         `yaml:"depends_on"`
		Hostname    string            `yaml:"hostname"`
		User        string            `yaml:"user"`
		Restart     string            `yaml:"restart"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Healthcheck *struct {
			Test     []string `yaml:"test"`
			Interval string   `yaml:"interval"`
			Timeout  string   `yaml:"timeout"`
			Retries  int      `yaml:"retries"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]*struct{} `yaml:"volumes"`
}

type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// The compose stack decodes strictly and matches the code: the image built
// from the Dockerfile runs the api and two worker commands, with env names
// the code reads, the config loading strictly, distinct host ids, every
// mounted file present, Prometheus scraping each process on its listen
// port with the alert rules, Grafana provisioned with the dashboard, the
// search attributes registered and the target primary archiving WAL for a
// streaming replica.
func TestComposeStack(t *testing.T) {
	var cf composeFile
	decodeStrict(t, "compose/compose.yaml", &cf)
	raw, err := os.ReadFile("compose/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, string(raw), "")
	if len(cfg.Auth.Tokens) == 0 {
		t.Error("compose config has no API token")
	}
	env := envNames(t)
	dsnEnvs := []string{cfg.History.DSNEnv}
	for _, tc := range cfg.Targets {
		dsnEnvs = append(dsnEnvs, tc.DSNEnv)
	}
	apiPort, metricsPort := portOf(t, cfg.API.Listen), portOf(t, cfg.Worker.MetricsListen)

	roles := map[string][]string{}
	hostIDs := map[string]bool{}
	for name, s := range cf.Services {
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("%s mounts missing file %s", name, src)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("%s mounts undeclared volume %s", name, src)
			}
		}
		if s.Image != image {
			continue
		}
		if len(s.Command) != 1 || !subcommands()[s.Command[0]] {
			t.Errorf("%s: command %v is not a themisctl process command", name, s.Command)
			continue
		}
		roles[s.Command[0]] = append(roles[s.Command[0]], name)
		if s.Environment["THEMIS_CONFIG"] != "/etc/themis/config.yaml" || !slices.Contains(s.Volumes, "./config.yaml:/etc/themis/config.yaml:ro") {
			t.Errorf("%s: does not read compose/config.yaml", name)
		}
		for k := range s.Environment {
			if !slices.Contains(env, k) && !slices.Contains(dsnEnvs, k) {
				t.Errorf("%s: env %s is read neither by the code nor as a dsn_env", name, k)
			}
		}
		for _, want := range dsnEnvs {
			if s.Environment[want] == "" {
				t.Errorf("%s: %s is not set", name, want)
			}
		}
		if s.Command[0] == "worker" {
			id := s.Environment["THEMIS_HOST_ID"]
			if id == "" || hostIDs[id] {
				t.Errorf("%s: THEMIS_HOST_ID %q empty or shared", name, id)
			}
			hostIDs[id] = true
		}
		// Published on the host's loopback only: the API listens without TLS.
		if s.Command[0] == "api" && !slices.Contains(s.Ports, fmt.Sprintf("127.0.0.1:%d:%d", apiPort, apiPort)) {
			t.Errorf("api: ports %v lack %d", s.Ports, apiPort)
		}
	}
	if len(roles["worker"]) != 2 || len(roles["api"]) != 1 {
		t.Errorf("want two workers and one API, have %v", roles)
	}
	built := false
	for _, s := range cf.Services {
		if s.Build != nil {
			built = true
			if _, err := os.Stat(filepath.Join("compose", s.Build.Context, s.Build.Dockerfile)); err != nil || s.Image != image {
				t.Errorf("build %+v: no Dockerfile there or image not %s", s.Build, image)
			}
		}
	}
	if !built {
		t.Error("no service builds the image")
	}

	// Prometheus scrapes the API and each worker on their listen ports and
	// loads the rules; Grafana gets the dashboard.
	var pc prometheusConfig
	decodeStrict(t, "prometheus/prometheus.yml", &pc)
	var targets []string
	for _, sc := range pc.ScrapeConfigs {
		if sc.MetricsPath != "/metrics" {
			t.Errorf("scrape job %s: path %s", sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, n := range roles["api"] {
		if !slices.Contains(targets, n+":"+strconv.Itoa(apiPort)) {
			t.Errorf("Prometheus does not scrape %s:%d", n, apiPort)
		}
	}
	for _, n := range roles["worker"] {
		if !slices.Contains(targets, n+":"+strconv.Itoa(metricsPort)) {
			t.Errorf("Prometheus does not scrape %s:%d", n, metricsPort)
		}
	}
	if !slices.Contains(pc.RuleFiles, "/etc/prometheus/alerts.yml") || !slices.Contains(cf.Services["prometheus"].Volumes, "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro") {
		t.Error("Prometheus does not load prometheus/alerts.yml")
	}
	if !slices.Contains(cf.Services["grafana"].Volumes, "../grafana/themis-maintenance.json:/var/lib/grafana/dashboards/themis-maintenance.json:ro") {
		t.Error("Grafana is not provisioned with the dashboard")
	}
	// Search attributes, WAL archiving, the replica.
	script := strings.Join(cf.Services["search-attributes"].Command, " ")
	for _, sa := range searchAttributes() {
		if !strings.Contains(script, sa) {
			t.Errorf("compose does not register search attribute %s", sa)
		}
	}
	primary := strings.Join(cf.Services["pg-primary"].Command, " ")
	if !strings.Contains(primary, "archive_mode=on") || !strings.Contains(primary, "archive_command=") {
		t.Error("pg-primary does not archive WAL")
	}
	if !strings.Contains(strings.Join(cf.Services["pg-replica"].Command, " "), "pg_basebackup -h pg-primary") {
		t.Error("pg-replica is not a replica of pg-primary")
	}
	if len(cfg.Targets) == 0 || len(cfg.Targets[0].ReplicaDSNs) == 0 || !strings.Contains(cfg.Targets[0].ReplicaDSNs[0], "@pg-replica:") {
		t.Error("the target's replica_dsns do not name pg-replica")
	}
	if _, ok := cf.Services["temporal-ui"]; !ok || !strings.Contains(cf.Services["temporal"].Environment["DB"], "postgres") {
		t.Error("no Temporal UI, or Temporal not on PostgreSQL")
	}
}
