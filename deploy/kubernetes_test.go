package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
)

// Local structs for the Kubernetes fields the manifests use (k8s.io/api
// is not a dependency); decoded strictly, so an unknown or misspelt field
// fails.
type (
	objectMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	header struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   objectMeta `yaml:"metadata"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional *bool  `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	container struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		ImagePullPolicy string   `yaml:"imagePullPolicy"`
		Command         []string `yaml:"command"`
		Args            []string `yaml:"args"`
		Env             []envVar `yaml:"env"`
		Ports           []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	podTemplate struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			ServiceAccountName            string `yaml:"serviceAccountName"`
			TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
			RestartPolicy                 string `yaml:"restartPolicy"`
			SecurityContext               *struct {
				RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
				RunAsUser      int64 `yaml:"runAsUser"`
				RunAsGroup     int64 `yaml:"runAsGroup"`
				FSGroup        int64 `yaml:"fsGroup"`
				SeccompProfile struct {
					Type string `yaml:"type"`
				} `yaml:"seccompProfile"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
			Volumes    []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
				Secret *struct {
					SecretName string `yaml:"secretName"`
				} `yaml:"secret"`
				EmptyDir *struct{} `yaml:"emptyDir"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	}
	configMap struct {
		header `yaml:",inline"`
		Data   map[string]string `yaml:"data"`
	}
	secret struct {
		header     `yaml:",inline"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
	}
	serviceAccount struct {
		header                       `yaml:",inline"`
		AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	}
	statefulSet struct {
		header `yaml:",inline"`
		Spec   struct {
			ServiceName          string        `yaml:"serviceName"`
			Replicas             int           `yaml:"replicas"`
			PodManagementPolicy  string        `yaml:"podManagementPolicy"`
			Selector             labelSelector `yaml:"selector"`
			Template             podTemplate   `yaml:"template"`
			VolumeClaimTemplates []struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     struct {
					AccessModes []string `yaml:"accessModes"`
					Resources   struct {
						Requests map[string]string `yaml:"requests"`
					} `yaml:"resources"`
				} `yaml:"spec"`
			} `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	deployment struct {
		header `yaml:",inline"`
		Spec   struct {
			Replicas int           `yaml:"replicas"`
			Selector labelSelector `yaml:"selector"`
			Template podTemplate   `yaml:"template"`
		} `yaml:"spec"`
	}
	service struct {
		header `yaml:",inline"`
		Spec   struct {
			ClusterIP string            `yaml:"clusterIP"`
			Selector  map[string]string `yaml:"selector"`
			Ports     []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	hpa struct {
		header `yaml:",inline"`
		Spec   struct {
			ScaleTargetRef struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Name       string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int `yaml:"minReplicas"`
			MaxReplicas int `yaml:"maxReplicas"`
			Metrics     []struct {
				Type     string `yaml:"type"`
				Resource struct {
					Name   string `yaml:"name"`
					Target struct {
						Type               string `yaml:"type"`
						AverageUtilization int    `yaml:"averageUtilization"`
					} `yaml:"target"`
				} `yaml:"resource"`
			} `yaml:"metrics"`
			Behavior struct {
				ScaleDown struct {
					StabilizationWindowSeconds int `yaml:"stabilizationWindowSeconds"`
				} `yaml:"scaleDown"`
			} `yaml:"behavior"`
		} `yaml:"spec"`
	}
	pdb struct {
		header `yaml:",inline"`
		Spec   struct {
			MinAvailable int           `yaml:"minAvailable"`
			Selector     labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	job struct {
		header `yaml:",inline"`
		Spec   struct {
			BackoffLimit            int         `yaml:"backoffLimit"`
			TTLSecondsAfterFinished int         `yaml:"ttlSecondsAfterFinished"`
			Template                podTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
)

type manifests struct {
	configMaps   map[string]configMap
	secrets      map[string]secret
	statefulSets map[string]statefulSet
	deployments  map[string]deployment
	services     map[string]service
	hpas         []hpa
	pdbs         []pdb
	jobs         []job
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{configMaps: map[string]configMap{}, secrets: map[string]secret{}, statefulSets: map[string]statefulSet{},
		deployments: map[string]deployment{}, services: map[string]service{}}
	for _, d := range docs(t, "kubernetes/themis.yaml") {
		var h struct {
			Kind string `yaml:"kind"`
		}
		lenient(t, d, &h)
		switch h.Kind {
		case "ConfigMap":
			var v configMap
			strict(t, d, &v)
			m.configMaps[v.Metadata.Name] = v
		case "Secret":
			var v secret
			strict(t, d, &v)
			m.secrets[v.Metadata.Name] = v
		case "ServiceAccount":
			var v serviceAccount
			strict(t, d, &v)
		case "StatefulSet":
			var v statefulSet
			strict(t, d, &v)
			m.statefulSets[v.Metadata.Name] = v
		case "Deployment":
			var v deployment
			strict(t, d, &v)
			m.deployments[v.Metadata.Name] = v
		case "Service":
			var v service
			strict(t, d, &v)
			m.services[v.Metadata.Name] = v
		case "HorizontalPodAutoscaler":
			var v hpa
			strict(t, d, &v)
			m.hpas = append(m.hpas, v)
		case "PodDisruptionBudget":
			var v pdb
			strict(t, d, &v)
			m.pdbs = append(m.pdbs, v)
		case "Job":
			var v job
			strict(t, d, &v)
			m.jobs = append(m.jobs, v)
		default:
			t.Errorf("unexpected kind %q", h.Kind)
		}
	}
	return m
}

func lenient(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yamlUnmarshal(doc, v); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	env := envNames(t)
	cm, ok := m.configMaps["themis-config"]
	if !ok {
		t.Fatal("no ConfigMap themis-config")
	}
	tokens, ok := m.secrets["themis-tokens"]
	if !ok || tokens.StringData["tokens.yaml"] == "" {
		t.Fatal("no Secret themis-tokens with tokens.yaml")
	}
	cfg := loadConfig(t, cm.Data["config.yaml"], tokens.StringData["tokens.yaml"])
	if len(cfg.Auth.Tokens) == 0 {
		t.Error("no API token: every call would be 401")
	}
	if cfg.History.Driver != "postgres" || cfg.API.AuditSink != "history" {
		t.Error("history store and audit log must be shared (postgres, audit_sink history): pods are replaceable")
	}
	dsnEnvs := []string{cfg.History.DSNEnv}
	for _, tc := range cfg.Targets {
		dsnEnvs = append(dsnEnvs, tc.DSNEnv)
	}

	worker, ok := m.statefulSets["themis-worker"]
	if !ok {
		t.Fatal("no worker StatefulSet")
	}
	apiDep, ok := m.deployments["themis-api"]
	if !ok {
		t.Fatal("no API Deployment")
	}
	pods := map[string]podTemplate{"worker": worker.Spec.Template, "api": apiDep.Spec.Template}
	ports := map[string]int{"worker": portOf(t, cfg.Worker.MetricsListen), "api": portOf(t, cfg.API.Listen)}
	for role, pt := range pods {
		sc := pt.Spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == 0 || sc.SeccompProfile.Type == "" {
			t.Errorf("%s: pod securityContext must run as non-root with a seccomp profile", role)
		}
		if pt.Metadata.Annotations["prometheus.io/scrape"] != "true" || pt.Metadata.Annotations["prometheus.io/path"] != "/metrics" ||
			pt.Metadata.Annotations["prometheus.io/port"] != strconv.Itoa(ports[role]) {
			t.Errorf("%s: scrape annotations %v, want port %d", role, pt.Metadata.Annotations, ports[role])
		}
		if len(pt.Spec.Containers) != 1 {
			t.Fatalf("%s: want one container", role)
		}
		c := pt.Spec.Containers[0]
		if c.Image != image {
			t.Errorf("%s: image %q, want %q", role, c.Image, image)
		}
		if len(c.Args) != 1 || !subcommands()[c.Args[0]] || c.Args[0] != role {
			t.Errorf("%s: args %v are not the themisctl %s command", role, c.Args, role)
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != ports[role] {
			t.Errorf("%s: container ports %+v, want %d (the config's listen port)", role, c.Ports, ports[role])
		}
		for name, p := range map[string]*probe{api.ReadyzPath: c.ReadinessProbe, api.HealthzPath: c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || (p.HTTPGet.Port != c.Ports[0].Name && p.HTTPGet.Port != strconv.Itoa(ports[role])) {
				t.Errorf("%s: probe for %s is %+v", role, name, p)
			}
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["cpu"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: requests and limits of cpu and memory are required", role)
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation ||
			!slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container securityContext must forbid privilege escalation and drop ALL", role)
		}
		var names []string
		for _, e := range c.Env {
			names = append(names, e.Name)
			if !slices.Contains(env, e.Name) && !slices.Contains(dsnEnvs, e.Name) {
				t.Errorf("%s: env %s is read neither by the code nor as a dsn_env of the config", role, e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if _, ok := m.secrets[ref.Name].StringData[ref.Key]; !ok {
					t.Errorf("%s: env %s refers to missing secret key %s/%s", role, e.Name, ref.Name, ref.Key)
				}
			}
		}
		for _, want := range dsnEnvs {
			if !slices.Contains(names, want) {
				t.Errorf("%s: env %s (a dsn_env of the config) is not set", role, want)
			}
		}
		for _, v := range pt.Spec.Volumes {
			if v.ConfigMap != nil {
				if _, ok := m.configMaps[v.ConfigMap.Name]; !ok {
					t.Errorf("%s: volume %s: no ConfigMap %s", role, v.Name, v.ConfigMap.Name)
				}
			}
			if v.Secret != nil {
				if _, ok := m.secrets[v.Secret.SecretName]; !ok {
					t.Errorf("%s: volume %s: no Secret %s", role, v.Name, v.Secret.SecretName)
				}
			}
		}
	}
	// The worker's state (scratch instances, backups) is on a per-pod
	// PersistentVolume mounted at data_dir.
	if len(worker.Spec.VolumeClaimTemplates) == 0 {
		t.Error("worker: no PersistentVolumeClaim for its state")
	}
	mounted := false
	for _, vm := range worker.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || (vm.Name == worker.Spec.VolumeClaimTemplates[0].Metadata.Name && vm.MountPath == cfg.DataDir)
	}
	if !mounted {
		t.Errorf("worker: the claim is not mounted at data_dir %s", cfg.DataDir)
	}
	hostEnv := false
	for _, e := range worker.Spec.Template.Spec.Containers[0].Env {
		hostEnv = hostEnv || (e.Name == "THEMIS_HOST_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !hostEnv {
		t.Error("worker: THEMIS_HOST_ID must be the pod name (stable host queue)")
	}
	// Selectors match templates; the HPA and PDBs aim at what exists.
	for name, s := range map[string]struct {
		sel    labelSelector
		labels map[string]string
	}{"themis-worker": {worker.Spec.Selector, worker.Spec.Template.Metadata.Labels}, "themis-api": {apiDep.Spec.Selector, apiDep.Spec.Template.Metadata.Labels}} {
		for k, v := range s.sel.MatchLabels {
			if s.labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match the pod labels", name, k, v)
			}
		}
	}
	if len(m.hpas) != 1 || m.hpas[0].Spec.ScaleTargetRef.Kind != "StatefulSet" || m.hpas[0].Spec.ScaleTargetRef.Name != "themis-worker" ||
		m.hpas[0].Spec.MinReplicas < 1 || m.hpas[0].Spec.MaxReplicas < m.hpas[0].Spec.MinReplicas {
		t.Errorf("worker HPA: %+v", m.hpas)
	}
	covered := map[string]bool{}
	for _, p := range m.pdbs {
		covered[p.Spec.Selector.MatchLabels["app"]] = true
	}
	if !covered["themis-worker"] || !covered["themis-api"] {
		t.Errorf("PodDisruptionBudgets cover %v, want themis-worker and themis-api", covered)
	}
	svc, ok := m.services["themis-api"]
	if !ok || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != ports["api"] || svc.Spec.Selector["app"] != "themis-api" {
		t.Errorf("API Service: %+v", svc)
	}
	// The search-attribute Job registers the four attributes the workflows set.
	if len(m.jobs) != 1 {
		t.Fatalf("want one search-attribute Job, have %d", len(m.jobs))
	}
	script := strings.Join(append(m.jobs[0].Spec.Template.Spec.Containers[0].Command, m.jobs[0].Spec.Template.Spec.Containers[0].Args...), " ")
	for _, sa := range searchAttributes() {
		if !strings.Contains(script, sa) {
			t.Errorf("search-attribute Job does not register %s", sa)
		}
	}
	if !strings.Contains(script, "search-attribute create") || !strings.Contains(script, "Keyword") {
		t.Errorf("search-attribute Job: %s", script)
	}
}
