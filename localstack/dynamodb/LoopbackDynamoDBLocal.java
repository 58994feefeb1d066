/*
 * Starts DynamoDB Local bound to 127.0.0.1 only.
 *
 * DynamoDBLocal.jar has no host option: its Jetty server listens on every interface. This launcher
 * builds the server exactly as the jar's own main does (same command-line options), then sets the
 * host of its connectors to the loopback address before starting it. A port that is taken ends the
 * process with an error instead of leaving a JVM running without a listener.
 *
 * Run as a single-file source program: java -cp "DynamoDBLocal.jar:DynamoDBLocal_lib/*" this-file args...
 */
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class LoopbackDynamoDBLocal {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    for (Connector connector : server.getConnectors()) {
      if (connector instanceof ServerConnector) {
        ((ServerConnector) connector).setHost("127.0.0.1");
      }
    }
    try {
      proxy.start();
    } catch (Exception e) {
      System.err.println("DynamoDB Local could not start: " + e);
      System.exit(1);
    }
    proxy.join();
  }
}
