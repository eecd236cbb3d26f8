import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.concurrent.CountDownLatch;

/**
 * tradecore's MongoDB-wire-protocol server for tests: mongo-java-server with its in-memory
 * backend, bound to a loopback address. Started in the background by infra/test-infra/up.sh.
 *
 * <p>Arguments: [host] [port], default 127.0.0.1 27017. Data lives only in memory, so a
 * restart starts empty. It reports ServerVersion.MONGO_5_0, whose maxWireVersion is 8: the
 * lowest the Node driver 6 line accepts (driver 7 needs 9 and refuses this server).
 */
public final class TestMongoServer {
  private TestMongoServer() {}

  public static void main(String[] args) throws InterruptedException {
    String host = args.length > 0 ? args[0] : "127.0.0.1";
    int port = args.length > 1 ? Integer.parseInt(args[1]) : 27017;

    MongoServer server = new MongoServer(new MemoryBackend().version(ServerVersion.MONGO_5_0));
    server.bind(host, port);

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.shutdownNow();
                  stopped.countDown();
                }));
    System.out.println(
        "mongo-java-server listening on " + host + ":" + port + " (wire version "
            + ServerVersion.MONGO_5_0.getWireVersion() + ")");
    stopped.await();
  }
}
