package io.vmplatform.example;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.cloud.client.ServiceInstance;
import org.springframework.cloud.client.discovery.DiscoveryClient;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
public class InfoController {

    static final String NOT_CONFIGURED = "(not configured: set APP_GREETING)";

    private final DiscoveryClient discovery;
    private final String service;
    private final String version;
    private final String instance;
    // Comes from a Kubernetes Secret (env APP_GREETING): returned to callers, never logged.
    private final String greeting;

    public InfoController(DiscoveryClient discovery,
                          @Value("${spring.application.name}") String service,
                          @Value("${app.version}") String version,
                          @Value("${app.instance}") String instance,
                          @Value("${app.greeting:}") String greeting) {
        this.discovery = discovery;
        this.service = service;
        this.version = version;
        this.instance = instance;
        this.greeting = greeting;
    }

    /** Who answered: the service's name, the build's version, the pod and the configured greeting. */
    @GetMapping("/")
    public Map<String, String> info() {
        Map<String, String> body = new TreeMap<>();
        body.put("service", service);
        body.put("version", version);
        body.put("instance", instance);
        body.put("greeting", greeting.isEmpty() ? NOT_CONFIGURED : greeting);
        return body;
    }

    /** Every application this service sees in the registry, with its instances' host:port. */
    @GetMapping("/peers")
    public Map<String, Map<String, List<String>>> peers() {
        Map<String, List<String>> apps = new TreeMap<>();
        for (String id : discovery.getServices()) {
            List<String> addresses = discovery.getInstances(id).stream()
                    .map(i -> i.getHost() + ":" + i.getPort())
                    .sorted()
                    .toList();
            apps.put(id.toUpperCase(java.util.Locale.ROOT), addresses);
        }
        return Map.of("apps", apps);
    }

    /** A DNS lookup from inside the pod (cluster DNS): {"name": ..., "addresses": [...]} or an error. */
    @GetMapping("/resolve")
    public Map<String, Object> resolve(@RequestParam("name") String name) {
        Map<String, Object> body = new TreeMap<>();
        body.put("name", name);
        try {
            body.put("addresses", Arrays.stream(InetAddress.getAllByName(name)).map(InetAddress::getHostAddress).sorted().toList());
        } catch (UnknownHostException e) {
            body.put("error", "unknown host");
        }
        return body;
    }
}
