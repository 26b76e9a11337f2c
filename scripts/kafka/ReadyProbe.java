// Client-side readiness probe for the development broker. scripts/services.sh compiles it once per
// Kafka version against that version's jars (.cache/kafka/<version>/probe) and runs
//   java -cp '<libs>/*:<probe>' ReadyProbe <bootstrap> <timeout-seconds>
// (`java -cp '<libs>/*' scripts/kafka/ReadyProbe.java ...` works too, 1.5 s slower).
//
// "Kafka Server started" in the log only means the broker is serving. On a freshly formatted broker
// the first group request then creates __consumer_offsets, and until its coordinator has loaded,
// clients get COORDINATOR_LOAD_IN_PROGRESS: kafkajs logs that as an ERROR and crash-restarts its
// consumer. Looking up a group's offsets here (the admin client retries until the coordinator
// answers) makes `up` return only once consumer groups work. Likewise the first InitProducerId
// (idempotent and transactional producers) gets COORDINATOR_LOAD_IN_PROGRESS until the broker has
// been handed a block of producer ids; fencing a probe transactional id requests that block (and
// creates __transaction_state) here instead of in the first test.
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class ReadyProbe {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    long timeoutMs = Duration.ofSeconds(Long.parseLong(args[1])).toMillis();
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(AdminClientConfig.CLIENT_ID_CONFIG, "tracesift-ready-probe");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) timeoutMs);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
    try (Admin admin = Admin.create(props)) {
      int brokers = admin.describeCluster().nodes().get(timeoutMs, TimeUnit.MILLISECONDS).size();
      admin.listConsumerGroupOffsets("tracesift-ready-probe")
          .partitionsToOffsetAndMetadata()
          .get(timeoutMs, TimeUnit.MILLISECONDS);
      // A new id each time: fencing a known id only bumps its epoch and allocates nothing. The
      // entry expires with transactional.id.expiration.ms (7 days).
      String txnId = "tracesift-ready-probe-" + UUID.randomUUID();
      admin.fenceProducers(List.of(txnId)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
      System.out.println("ready: " + brokers + " broker(s), group and transaction coordinators loaded");
    }
  }
}
