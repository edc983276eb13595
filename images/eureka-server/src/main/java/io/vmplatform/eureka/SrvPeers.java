package io.vmplatform.eureka;

import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;

import javax.naming.NamingEnumeration;
import javax.naming.NamingException;
import javax.naming.directory.Attribute;
import javax.naming.directory.DirContext;
import javax.naming.directory.InitialDirContext;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.cloud.netflix.eureka.EurekaClientConfigBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;

/**
 * Peers found in cluster DNS instead of a fixed list.
 *
 * <p>With {@code EUREKA_PEERS_SRV} set to the SRV name of the headless peers Service (e.g.
 * {@code _http._tcp.eurekaserver-peers.platform.svc.cluster.local}), every call for the service
 * URLs (at start and each {@code eureka.server.peer-eureka-nodes-update-interval-ms}) answers
 * with one {@code http://<pod>.<service>...:<port>/eureka/} per SRV record: the pods' stable
 * names, which are also their {@code eureka.instance.hostname}, so peers count as available
 * replicas. Scaling the StatefulSet changes no server's configuration. Without the variable, or
 * while DNS has no record yet, the configured defaultZone is used.
 */
@Configuration(proxyBeanMethods = false)
public class SrvPeers {

    private static final Logger LOG = LoggerFactory.getLogger(SrvPeers.class);

    @Bean
    @ConfigurationProperties("eureka.client")
    public EurekaClientConfigBean eurekaClientConfigBean(Environment env) {
        String srv = env.getProperty("EUREKA_PEERS_SRV", "");
        return new EurekaClientConfigBean() {
            @Override
            public List<String> getEurekaServerServiceUrls(String zone) {
                if (!srv.isEmpty()) {
                    List<String> found = lookup(srv);
                    if (!found.isEmpty()) {
                        return found;
                    }
                }
                return super.getEurekaServerServiceUrls(zone);
            }
        };
    }

    static List<String> lookup(String srv) {
        List<String> urls = new ArrayList<>();
        Hashtable<String, String> jndi = new Hashtable<>();
        jndi.put("java.naming.factory.initial", "com.sun.jndi.dns.DnsContextFactory");
        jndi.put("java.naming.provider.url", "dns:");
        try {
            DirContext ctx = new InitialDirContext(jndi);
            try {
                Attribute records = ctx.getAttributes(srv, new String[] {"SRV"}).get("SRV");
                if (records != null) {
                    NamingEnumeration<?> all = records.getAll();
                    while (all.hasMore()) {
                        // "<priority> <weight> <port> <target>."
                        String[] f = all.next().toString().trim().split("\\s+");
                        if (f.length == 4) {
                            String host = f[3].endsWith(".") ? f[3].substring(0, f[3].length() - 1) : f[3];
                            urls.add("http://" + host + ":" + f[2] + "/eureka/");
                        }
                    }
                }
            } finally {
                ctx.close();
            }
        } catch (NamingException e) {
            LOG.info("no peers in DNS yet for {}: {}", srv, e.getMessage());
        }
        urls.sort(null);
        return urls;
    }
}
